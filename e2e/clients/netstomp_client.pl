#!/usr/bin/perl
# e2e client: Perl Net::Stomp 0.61 (libnet-stomp-perl), STOMP 1.0.
#
# Run by e2e/clients_test.go; prints one JSON object per step on stdout.
use strict;
use warnings;
use JSON::PP;
use Net::Stomp;

my $TAG     = $ENV{E2E_TAG};
my $TIMEOUT = 10;
my $json    = JSON::PP->new->canonical;

sub emit { print $json->encode({@_}), "\n"; STDOUT->flush; }

sub connect_stomp {
    my $stomp = Net::Stomp->new({
        hostname => $ENV{STOMP_HOST}, port => $ENV{STOMP_PORT},
        reconnect_attempts => 1, initial_reconnect_attempts => 1,
    });
    # No accept-version header: STOMP 1.0.
    my $f = $stomp->connect({
        login => $ENV{STOMP_LOGIN}, passcode => $ENV{STOMP_PASSCODE}, host => $ENV{STOMP_VHOST},
    });
    die "CONNECT failed: " . ($f ? $f->as_string : "no frame") unless $f && $f->command eq 'CONNECTED';
    return ($stomp, $f->headers->{version} // '');
}

sub next_frame {
    my ($stomp) = @_;
    my $f = $stomp->receive_frame({ timeout => $TIMEOUT });
    die "no frame within ${TIMEOUT}s\n" unless $f;
    return $f;
}

sub expect_frame {
    my ($stomp, $want) = @_;
    my $f = next_frame($stomp);
    die "want $want, got " . $f->as_string . "\n" unless $f->command eq $want;
    return $f;
}

sub receipt {
    my ($stomp, $id) = @_;
    my $got = expect_frame($stomp, 'RECEIPT')->headers->{'receipt-id'} // '';
    die "receipt-id '$got', want '$id'\n" unless $got eq $id;
    return $got;
}

# The MESSAGE may overtake the SEND's RECEIPT.
sub message_and_receipt {
    my ($stomp) = @_;
    my @got = (next_frame($stomp), next_frame($stomp));
    my ($msg) = grep { $_->command eq 'MESSAGE' } @got;
    die "no MESSAGE\n" unless $msg;
    return ($msg, map { $_->headers->{'receipt-id'} } grep { $_->command eq 'RECEIPT' } @got);
}

sub main {
    my ($stomp, $version) = connect_stomp();
    emit(step => 'connect', version => $version);

    my $q = "/queue/$ENV{E2E_QUEUE}";
    $stomp->subscribe({ destination => $q, id => 'q', ack => 'auto', receipt => 'sub-queue' });
    my @receipts = (receipt($stomp, 'sub-queue'));
    $stomp->send({ destination => $q, body => "queue $TAG", receipt => 'send-queue' });
    my ($msg, @more) = message_and_receipt($stomp);
    emit(step => 'queue', receipts => [@receipts, @more],
         destination => $msg->headers->{destination}, body => $msg->body);
    $stomp->unsubscribe({ id => 'q', receipt => 'unsub-queue' });
    receipt($stomp, 'unsub-queue');

    my $topic = "/topic/$ENV{E2E_TOPIC_KEY}";
    my @subs = map { (connect_stomp())[0] } 1 .. 2;
    @receipts = ();
    for my $i (0 .. 1) {
        $subs[$i]->subscribe({ destination => $topic, id => "t$i", receipt => "sub-topic-$i" });
        push @receipts, receipt($subs[$i], "sub-topic-$i");
    }
    $stomp->send({ destination => $topic, body => "topic $TAG", receipt => 'send-topic' });
    push @receipts, receipt($stomp, 'send-topic');
    my @got = map { expect_frame($_, 'MESSAGE') } @subs;
    $_->disconnect for @subs;
    emit(step => 'topic', receipts => \@receipts, bodies => [map { $_->body } @got],
         destinations => [map { $_->headers->{destination} } @got]);

    my $ex = "/exchange/amq.direct/$ENV{E2E_DIRECT_KEY}";
    $stomp->subscribe({ destination => $ex, id => 'x', receipt => 'sub-exchange' });
    @receipts = (receipt($stomp, 'sub-exchange'));
    $stomp->send({ destination => $ex, body => "direct $TAG", receipt => 'send-exchange' });
    ($msg, @more) = message_and_receipt($stomp);
    emit(step => 'exchange', receipts => [@receipts, @more],
         destination => $msg->headers->{destination}, body => $msg->body);
    $stomp->unsubscribe({ id => 'x', receipt => 'unsub-exchange' });
    receipt($stomp, 'unsub-exchange');

    my $aq = "/queue/$ENV{E2E_ACK_QUEUE}";
    $stomp->subscribe({ destination => $aq, id => 'a', ack => 'client-individual', receipt => 'sub-ack' });
    receipt($stomp, 'sub-ack');
    $stomp->send({ destination => $aq, body => "ack-$_ $TAG", receipt => "send-ack-$_" }) for 1 .. 2;
    my @deliveries;
    my $nacked = 0;
    while (@deliveries < 3) {
        my $f = next_frame($stomp);
        next if $f->command eq 'RECEIPT';
        die "want MESSAGE, got " . $f->as_string . "\n" unless $f->command eq 'MESSAGE';
        push @deliveries, { body => $f->body, redelivered => $f->headers->{redelivered} // '' };
        if ($f->body =~ /^ack-1/ && !$nacked) {
            $stomp->nack({ frame => $f });    # NACK in STOMP 1.0: accepted by the plugin and stompgate
            $nacked = 1;
        } else {
            $stomp->ack({ frame => $f, receipt => 'acked-' . scalar(@deliveries) });
        }
    }
    while (1) {
        my $f = expect_frame($stomp, 'RECEIPT');
        last if $f->headers->{'receipt-id'} eq 'acked-3';
    }
    emit(step => 'ack', deliveries => \@deliveries);

    $stomp->disconnect;
    emit(step => 'done');
}

eval { main(); 1 } or do {
    my $err = $@ || 'unknown error';
    chomp $err;
    emit(step => 'error', error => $err);
    exit 1;
};

<?php
// e2e client: the PHP stomp extension (php-stomp 2.0), STOMP 1.1.
//
// Run by e2e/clients_test.go; prints one JSON object per step on stdout.
// Stomp::send/subscribe/ack with a 'receipt' header return true only once
// the extension has read the matching RECEIPT (other frames are queued for
// readFrame), so a receipt is reported when the call returned true.

const TIMEOUT = 10;
$TAG = getenv('E2E_TAG');

function emit(array $obj): void
{
    echo json_encode($obj, JSON_UNESCAPED_SLASHES), "\n";
    flush();
}

function connect_stomp(): Stomp
{
    $s = new Stomp(
        sprintf('tcp://%s:%s', getenv('STOMP_HOST'), getenv('STOMP_PORT')),
        getenv('STOMP_LOGIN'),
        getenv('STOMP_PASSCODE'),
        ['host' => getenv('STOMP_VHOST'), 'accept-version' => '1.1']
    );
    $s->setReadTimeout(TIMEOUT);
    return $s;
}

function with_receipt(bool $ok, string $id): string
{
    if (!$ok) {
        throw new RuntimeException("no RECEIPT $id");
    }
    return $id;
}

function next_message(Stomp $s): StompFrame
{
    $f = $s->readFrame();
    if ($f === false) {
        throw new RuntimeException('no frame within ' . TIMEOUT . 's');
    }
    if ($f->command !== 'MESSAGE') {
        throw new RuntimeException("want MESSAGE, got {$f->command} " . json_encode($f->headers) . " {$f->body}");
    }
    return $f;
}

function main(string $TAG): void
{
    $s = connect_stomp();
    emit(['step' => 'connect', 'version' => '']); // the extension does not expose CONNECTED

    $q = '/queue/' . getenv('E2E_QUEUE');
    $receipts = [with_receipt($s->subscribe($q, ['id' => 'q', 'ack' => 'auto', 'receipt' => 'sub-queue']), 'sub-queue')];
    $receipts[] = with_receipt($s->send($q, "queue $TAG", ['receipt' => 'send-queue']), 'send-queue');
    $m = next_message($s);
    emit(['step' => 'queue', 'receipts' => $receipts, 'destination' => $m->headers['destination'] ?? '', 'body' => $m->body]);
    with_receipt($s->unsubscribe($q, ['id' => 'q', 'receipt' => 'unsub-queue']), 'unsub-queue');

    $topic = '/topic/' . getenv('E2E_TOPIC_KEY');
    $subs = [connect_stomp(), connect_stomp()];
    $receipts = [];
    foreach ($subs as $i => $sub) {
        $receipts[] = with_receipt($sub->subscribe($topic, ['id' => "t$i", 'receipt' => "sub-topic-$i"]), "sub-topic-$i");
    }
    $receipts[] = with_receipt($s->send($topic, "topic $TAG", ['receipt' => 'send-topic']), 'send-topic');
    $got = array_map('next_message', $subs);
    $subs = []; // the destructors send DISCONNECT
    emit(['step' => 'topic', 'receipts' => $receipts,
        'bodies' => array_map(fn ($m) => $m->body, $got),
        'destinations' => array_map(fn ($m) => $m->headers['destination'] ?? '', $got)]);

    $ex = '/exchange/amq.direct/' . getenv('E2E_DIRECT_KEY');
    $receipts = [with_receipt($s->subscribe($ex, ['id' => 'x', 'receipt' => 'sub-exchange']), 'sub-exchange')];
    $receipts[] = with_receipt($s->send($ex, "direct $TAG", ['receipt' => 'send-exchange']), 'send-exchange');
    $m = next_message($s);
    emit(['step' => 'exchange', 'receipts' => $receipts, 'destination' => $m->headers['destination'] ?? '', 'body' => $m->body]);
    with_receipt($s->unsubscribe($ex, ['id' => 'x', 'receipt' => 'unsub-exchange']), 'unsub-exchange');

    $aq = '/queue/' . getenv('E2E_ACK_QUEUE');
    with_receipt($s->subscribe($aq, ['id' => 'a', 'ack' => 'client-individual', 'receipt' => 'sub-ack']), 'sub-ack');
    foreach ([1, 2] as $i) {
        with_receipt($s->send($aq, "ack-$i $TAG", ['receipt' => "send-ack-$i"]), "send-ack-$i");
    }
    $deliveries = [];
    $nacked = false;
    while (count($deliveries) < 3) {
        $m = next_message($s);
        $deliveries[] = ['body' => $m->body, 'redelivered' => $m->headers['redelivered'] ?? ''];
        // Passing the StompFrame echoes all MESSAGE headers (content-length
        // included) into the ACK/NACK, as semantics 4.4 expects of some clients.
        if (str_starts_with($m->body, 'ack-1') && !$nacked) {
            $s->nack($m, ['subscription' => 'a']);
            $nacked = true;
        } else {
            $n = count($deliveries);
            with_receipt($s->ack($m, ['subscription' => 'a', 'receipt' => "acked-$n"]), "acked-$n");
        }
    }
    emit(['step' => 'ack', 'deliveries' => $deliveries]);

    unset($s);
    emit(['step' => 'done']);
}

try {
    main($TAG);
} catch (Throwable $e) {
    emit(['step' => 'error', 'error' => get_class($e) . ': ' . $e->getMessage()]);
    exit(1);
}

package main

import (
	"math"
	"strings"
	"testing"
)

func TestCheckDeliveryCountsMissingDuplicateAndUnknown(t *testing.T) {
	sent := []uint64{3, 2} // producer 0 sent 0..2, producer 1 sent 0..1
	p1 := uint64(1) << producerShift
	received := [][]uint64{
		{0, 1, p1},
		{1, p1 | 5, 2 << producerShift},
	}
	got := checkDelivery(sent, received)
	want := deliveryCheck{Missing: 2, Duplicates: 1, Unknown: 2} // missing 0:2 and 1:1
	if got != want {
		t.Fatalf("checkDelivery = %+v, want %+v", got, want)
	}
	if got.ok() {
		t.Fatal("ok() = true for a faulty delivery")
	}
	if all := checkDelivery([]uint64{2}, [][]uint64{{1}, {0}}); !all.ok() {
		t.Fatalf("checkDelivery of a complete delivery = %+v", all)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	sorted := make([]int64, 1000)
	for i := range sorted {
		sorted[i] = int64(i + 1)
	}
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := percentile(sorted, c.q); got != c.want {
			t.Errorf("percentile(1..1000, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := percentile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("percentile(nil) = %v, want NaN", got)
	}
}

func TestMedianSkipsNaN(t *testing.T) {
	if got := median([]float64{5, math.NaN(), 1, 3}); got != 3 {
		t.Errorf("median = %v, want 3", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of even count = %v, want 2.5", got)
	}
	if got := median([]float64{math.NaN()}); !math.IsNaN(got) {
		t.Errorf("median of only NaN = %v, want NaN", got)
	}
}

func TestStampRoundTrip(t *testing.T) {
	body := make([]byte, minBodySize)
	before := nowNanos()
	stampBody(body, 7<<producerShift|42)
	seq, sent, ok := readStamp(body)
	if !ok || seq != 7<<producerShift|42 || sent < before || sent > nowNanos() {
		t.Fatalf("readStamp = %d, %d, %v", seq, sent, ok)
	}
	if _, _, ok := readStamp(body[:minBodySize-1]); ok {
		t.Fatal("readStamp accepted a short body")
	}
}

func TestFrameReaderParsesCountedAndNULTerminatedFrames(t *testing.T) {
	wire := "\nMESSAGE\r\nack:a\\c1\ncontent-length:3\n\nx\x00y\x00\n" +
		"RECEIPT\nreceipt-id:disc\n\n\x00"
	r := newFrameReader(stringsReader(wire))
	if err := r.next(); err != nil {
		t.Fatal(err)
	}
	if r.command() != "MESSAGE" || string(r.header("ack")) != `a\c1` || string(r.body) != "x\x00y" {
		t.Fatalf("got %s ack=%q body=%q", r.command(), r.header("ack"), r.body)
	}
	if err := r.next(); err != nil {
		t.Fatal(err)
	}
	if r.command() != "RECEIPT" || string(r.header("receipt-id")) != "disc" || len(r.body) != 0 {
		t.Fatalf("got %s receipt-id=%q body=%q", r.command(), r.header("receipt-id"), r.body)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

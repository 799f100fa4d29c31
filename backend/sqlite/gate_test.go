package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"
)

// entered reports whether g.enter returns within d (leaving at once if so).
func entered(g *writeGate, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if g.enter(ctx) != nil {
		return false
	}
	g.leave()
	return true
}

func TestWriteGate(t *testing.T) {
	t.Run("a write waits for a batch and enters when it ends", func(t *testing.T) {
		var g writeGate
		open, err := g.close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if entered(&g, 20*time.Millisecond) {
			t.Fatal("a write entered while a batch held the gate")
		}
		in := make(chan time.Time)
		go func() {
			if err := g.enter(context.Background()); err != nil {
				t.Error(err)
			}
			in <- time.Now()
			g.leave()
		}()
		time.Sleep(10 * time.Millisecond)
		opened := time.Now()
		open()
		select {
		case at := <-in:
			if at.Before(opened) {
				t.Error("the write entered before the gate opened")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the write did not enter after the gate opened")
		}
	})
	t.Run("a batch waits for the writes under way", func(t *testing.T) {
		var g writeGate
		if err := g.enter(context.Background()); err != nil {
			t.Fatal(err)
		}
		closed := make(chan func())
		go func() {
			open, err := g.close(context.Background())
			if err != nil {
				t.Error(err)
			}
			closed <- open
		}()
		select {
		case <-closed:
			t.Fatal("the batch held the gate while a write was under way")
		case <-time.After(20 * time.Millisecond):
		}
		if entered(&g, 20*time.Millisecond) {
			t.Fatal("a new write entered while a batch waited for the gate")
		}
		g.leave()
		select {
		case open := <-closed:
			open()
		case <-time.After(5 * time.Second):
			t.Fatal("the batch did not get the gate when the write left")
		}
		if !entered(&g, time.Second) {
			t.Fatal("a write could not enter after the batch")
		}
	})
	t.Run("a write whose context ends stops waiting", func(t *testing.T) {
		var g writeGate
		open, _ := g.close(context.Background())
		defer open()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := g.enter(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("enter: %v, want the context's error", err)
		}
	})
	t.Run("a batch whose context ends opens the gate again", func(t *testing.T) {
		var g writeGate
		if err := g.enter(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if _, err := g.close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("close: %v, want the context's error", err)
		}
		if !entered(&g, time.Second) {
			t.Fatal("the gate stayed shut after the batch gave up")
		}
		g.leave()
		open, err := g.close(context.Background())
		if err != nil {
			t.Fatalf("close after the writes left: %v", err)
		}
		open()
	})
}

package owner

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestPackRoundTrip(t *testing.T) {
	for _, tok := range []Token{{1, 0}, {4194303, 1<<42 - 1}, {12345, 987654321}} {
		if got := Unpack(tok.Pack()); got != tok {
			t.Errorf("Unpack(Pack(%v)) = %v", tok, got)
		}
		if tok.Pack() == 0 {
			t.Errorf("Pack(%v) = 0", tok)
		}
	}
}

func TestSelfAlive(t *testing.T) {
	me := Self()
	if int(me.Pid) != os.Getpid() || me.Start == 0 {
		t.Fatalf("Self() = %v", me)
	}
	if !Alive(me) {
		t.Fatal("Alive(Self()) = false")
	}
	w, err := NewWatch(me)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !w.Alive() {
		t.Fatal("Watch(Self()).Alive() = false")
	}
}

func TestRecycledPidIsNotOwner(t *testing.T) {
	me := Self()
	fake := Token{Pid: me.Pid, Start: me.Start - 1}
	if Alive(fake) {
		t.Fatal("a token with this pid but another start time is alive")
	}
	w, err := NewWatch(fake)
	if err != nil {
		t.Fatal(err)
	}
	if w.Alive() {
		t.Fatal("watch of a token with another start time is alive")
	}
}

// TestZombieAndReapedAreDead kills a child and checks it is dead both while a
// zombie (not yet reaped) and after it is reaped.
func TestZombieAndReapedAreDead(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tok, err := Of(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWatch(tok)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !Alive(tok) || !w.Alive() {
		t.Fatal("running child reported dead")
	}
	cmd.Process.Kill()
	deadline := time.Now().Add(2 * time.Second)
	for Alive(tok) || w.Alive() {
		if time.Now().After(deadline) {
			t.Fatal("killed (zombie) child still reported alive")
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Wait()
	if Alive(tok) || w.Alive() {
		t.Fatal("reaped child reported alive")
	}
	if _, err := Of(cmd.Process.Pid); err == nil {
		t.Fatal("Of(reaped pid) succeeded")
	}
}

func BenchmarkAlive(b *testing.B) {
	me := Self()
	for b.Loop() {
		Alive(me)
	}
}

func BenchmarkAliveDeadPid(b *testing.B) {
	tok := Token{Pid: 4194000, Start: 1}
	for b.Loop() {
		Alive(tok)
	}
}

func BenchmarkWatchAlive(b *testing.B) {
	w, err := NewWatch(Self())
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	for b.Loop() {
		w.Alive()
	}
}

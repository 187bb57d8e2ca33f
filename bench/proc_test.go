package bench

import (
	"os"
	"testing"
	"time"
)

// The machine's busy time holds this process's CPU time: what a round subtracts to find what
// the rest of the machine took.
func TestMachineBusyCountsThisProcess(t *testing.T) {
	busy0, err := machineBusy()
	if err != nil {
		t.Fatal(err)
	}
	self0, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var self1 ProcStats
	x := 0
	// Spin until the scheduler has given this process 200 ms of CPU: seconds on a starved machine.
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		for i := range 1_000_000 {
			x ^= i * i
		}
		if self1, err = readProc(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if self1.CPU-self0.CPU >= 200*time.Millisecond {
			break
		}
	}
	busy1, err := machineBusy()
	if err != nil {
		t.Fatal(err)
	}
	ours := self1.CPU - self0.CPU
	if ours < 200*time.Millisecond {
		t.Fatalf("this process got only %s of CPU in 2 minutes (%d): too little to compare", ours, x)
	}
	// Both are counted in ticks of 10 ms, each side rounded on its own.
	if got := busy1 - busy0; got < ours-20*time.Millisecond {
		t.Errorf("the machine was busy %s while this process alone used %s", got, ours)
	}
}

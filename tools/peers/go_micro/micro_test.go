// Go equivalents of tools/micro/runtime_bench, as testing.B benchmarks. Run
// with -cpu=1,2 (GOMAXPROCS); the benchmark name gets the suffix -2 for 2.
//
//	go test -run=^$ -bench=. -cpu=1,2 -count=3
//
// Each benchmark says which runtime_bench benchmark it stands beside.
package go_micro

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkGosched: two goroutines calling runtime.Gosched(); one iteration is
// one Gosched of the measuring goroutine (BM_YieldSwitch, at -cpu=1).
func BenchmarkGosched(b *testing.B) {
	var stop int32
	done := make(chan struct{})
	go func() {
		for atomic.LoadInt32(&stop) == 0 {
			runtime.Gosched()
		}
		close(done)
	}()
	runtime.Gosched()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.Gosched()
	}
	b.StopTimer()
	atomic.StoreInt32(&stop, 1)
	<-done
}

// BenchmarkSpawnJoin: start a goroutine that sends 1 and receive it
// (BM_SpawnJoin).
func BenchmarkSpawnJoin(b *testing.B) {
	for i := 0; i < b.N; i++ {
		ch := make(chan int, 1)
		go func() { ch <- 1 }()
		<-ch
	}
}

// BenchmarkSpawnJoinWaitGroup: go + WaitGroup.Wait (spawn + join without a
// result value).
func BenchmarkSpawnJoinWaitGroup(b *testing.B) {
	var wg sync.WaitGroup
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
}

// BenchmarkChanPingPong: two goroutines and two unbuffered channels; one
// iteration is one round trip. At -cpu=1 both share a P (same core); at -cpu=2
// the partner may run on the other P (cross core).
func BenchmarkChanPingPong(b *testing.B) {
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ping <- i
		<-pong
	}
	b.StopTimer()
	close(ping)
	<-pong
}

// BenchmarkChanPingPongThreads: BenchmarkChanPingPong with each goroutine
// locked to an OS thread of its own (runtime.LockOSThread), so that at -cpu=2
// every hand-off really crosses threads, as a cross-core hand-off between two
// schedulers does. Plain -cpu=2 lets both goroutines share one P.
func BenchmarkChanPingPongThreads(b *testing.B) {
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ping <- i
		<-pong
	}
	b.StopTimer()
	close(ping)
	<-pong
}

// BenchmarkCondPingPong: ping-pong through two Mutex+Cond slots, the shape
// of BM_CrossCoreWakeRoundTrip (compare at -cpu=2).
type slot struct {
	mu sync.Mutex
	cv *sync.Cond
	v  uint64
}

func newSlot() *slot { s := &slot{}; s.cv = sync.NewCond(&s.mu); return s }

func (s *slot) set(v uint64) {
	s.mu.Lock()
	s.v = v
	s.mu.Unlock()
	s.cv.Signal()
}

func (s *slot) waitChange(old uint64) uint64 {
	s.mu.Lock()
	for s.v == old {
		s.cv.Wait()
	}
	v := s.v
	s.mu.Unlock()
	return v
}

func BenchmarkCondPingPong(b *testing.B) {
	const stop = ^uint64(0)
	ping, pong := newSlot(), newSlot()
	done := make(chan struct{})
	go func() {
		var last uint64
		for {
			v := ping.waitChange(last)
			if v == stop {
				break
			}
			last = v
			pong.set(v)
		}
		close(done)
	}()
	b.ResetTimer()
	var i uint64
	for n := 0; n < b.N; n++ {
		i++
		ping.set(i)
		pong.waitChange(i - 1)
	}
	b.StopTimer()
	ping.set(stop)
	<-done
}

// BenchmarkMutexUncontended: Lock/Unlock of a sync.Mutex no one else uses
// (BM_MutexUncontended).
func BenchmarkMutexUncontended(b *testing.B) {
	var mu sync.Mutex
	counter := 0
	for i := 0; i < b.N; i++ {
		mu.Lock()
		counter++
		mu.Unlock()
	}
	_ = counter
}

// BenchmarkMutexContended: a helper goroutine loops on the same Lock/Unlock
// while the measuring one does b.N of them (BM_MutexContended, at -cpu=2).
func BenchmarkMutexContended(b *testing.B) {
	var mu sync.Mutex
	var stop int32
	counter := 0
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		close(started)
		for atomic.LoadInt32(&stop) == 0 {
			mu.Lock()
			counter++
			mu.Unlock()
		}
		close(done)
	}()
	<-started
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mu.Lock()
		counter++
		mu.Unlock()
	}
	b.StopTimer()
	atomic.StoreInt32(&stop, 1)
	<-done
}

// BenchmarkSelectTwoReadyChannels: select over two buffered channels that
// always hold a value; the chosen one is refilled (BM_SelectTwoReadyChannels).
func BenchmarkSelectTwoReadyChannels(b *testing.B) {
	a, c := make(chan int64, 1), make(chan int64, 1)
	a <- 1
	c <- 2
	for i := 0; i < b.N; i++ {
		select {
		case <-a:
			a <- 1
		case <-c:
			c <- 2
		}
	}
}

// BenchmarkSelectTwoChannelsDefault: select over two empty channels with a
// default case (BM_SelectTwoChannelsDefault).
func BenchmarkSelectTwoChannelsDefault(b *testing.B) {
	a, c := make(chan int64, 1), make(chan int64, 1)
	n := 0
	for i := 0; i < b.N; i++ {
		select {
		case <-a:
		case <-c:
		default:
			n++
		}
	}
	_ = n
}

// BenchmarkBufferedSendRecv: non-blocking send then receive on a buffered
// channel, one goroutine (BM_BufferedSendRecv).
func BenchmarkBufferedSendRecv(b *testing.B) {
	ch := make(chan int64, 64)
	for i := 0; i < b.N; i++ {
		select {
		case ch <- 1:
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// go_park: how much resident memory a parked goroutine costs (the Go side of
// tools/micro/park_memory). Spawns N goroutines, each parked on one channel,
// and prints the growth of VmRSS divided by N, in park_memory's format:
//
//	goroutines=N rss_before_kib=... rss_after_kib=... rss_per_goroutine_bytes=...
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

func vmRSSKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(s.Text())[1], 10, 64)
			return v
		}
	}
	return -1
}

func main() {
	n := int64(1000000)
	if len(os.Args) > 1 {
		v, err := strconv.ParseInt(os.Args[1], 10, 64)
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "go_park: bad count %q\n", os.Args[1])
			os.Exit(2)
		}
		n = v
	}
	runtime.GC()
	before := vmRSSKiB()
	gate := make(chan struct{})
	var parked, finished sync.WaitGroup
	parked.Add(int(n))
	finished.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func() {
			parked.Done()
			<-gate
			finished.Done()
		}()
	}
	parked.Wait()
	for i := 0; i < 3; i++ {
		runtime.Gosched()
	}
	after := vmRSSKiB()
	fmt.Printf("goroutines=%d rss_before_kib=%d rss_after_kib=%d rss_per_goroutine_bytes=%d\n",
		n, before, after, (after-before)*1024/n)
	close(gate)
	finished.Wait()
}

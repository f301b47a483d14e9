// go_http: the Go net/http peer for HTTP benchmarks: GET / answers
// "Hello, World!" (keep-alive). Run with GOMAXPROCS=1 when pinned to one CPU.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	body := []byte("Hello, World!")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// upper: an upper-casing line server and four clients that talk to it at once,
// in one process. The first client error, or Ctrl-C, cancels them all. The Go
// twin (71 lines, its imports on two; this file is 62 below it):
//
//   package main
//
//   import ("bufio"; "context"; "fmt"; "log"; "net"; "os"; "os/signal"; "strings"
//           "syscall"; "golang.org/x/sync/errgroup")
//
//   type nameKey struct{}
//
//   func serve(ln net.Listener) {
//   	for {
//   		c, err := ln.Accept()
//   		if err != nil {
//   			return
//   		}
//   		go func() {
//   			defer c.Close()
//   			r, w := bufio.NewReader(c), bufio.NewWriter(c)
//   			for {
//   				line, err := r.ReadString('\n')
//   				if err != nil {
//   					return
//   				}
//   				w.WriteString(strings.ToUpper(line))
//   				if w.Flush() != nil {
//   					return
//   				}
//   			}
//   		}()
//   	}
//   }
//
//   func client(ctx context.Context, addr string) error {
//   	var d net.Dialer
//   	c, err := d.DialContext(ctx, "tcp", addr)
//   	if err != nil {
//   		return err
//   	}
//   	defer c.Close()
//   	name := ctx.Value(nameKey{}).(string)
//   	r, w := bufio.NewReader(c), bufio.NewWriter(c)
//   	for i := 0; i < 3; i++ {
//   		fmt.Fprintf(w, "hello %d from %s\n", i, name)
//   		if err := w.Flush(); err != nil {
//   			return err
//   		}
//   		line, err := r.ReadString('\n')
//   		if err != nil {
//   			return err
//   		}
//   		fmt.Print(line)
//   	}
//   	return nil
//   }
//
//   func main() {
//   	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//   	defer stop()
//   	ln, err := net.Listen("tcp", "127.0.0.1:0")
//   	if err != nil {
//   		log.Fatal(err)
//   	}
//   	go serve(ln)
//   	g, ctx := errgroup.WithContext(ctx)
//   	for i := 0; i < 4; i++ {
//   		ctx := context.WithValue(ctx, nameKey{}, fmt.Sprintf("client-%d", i))
//   		g.Go(func() error { return client(ctx, ln.Addr().String()) })
//   	}
//   	if err := g.Wait(); err != nil {
//   		log.Fatal(err)
//   	}
//   	ln.Close()
//   }
#include <cctype>
#include <csignal>
#include <cstdio>
#include <string>

#include "fiber/all.h"

const fiber::ContextKey<std::string> kName;

void serve(fiber::TcpListener& ln) {
  for (;;) {
    auto c = ln.accept();
    if (!c) return;
    fiber::go([c = std::move(*c)]() mutable {
      fiber::BufReader r(c);
      fiber::BufWriter w(c);
      for (;;) {
        auto line = r.read_until('\n');
        if (!line) return;
        for (char& ch : *line) ch = static_cast<char>(std::toupper(ch));
        (void)w.write(*line);
        if (!w.flush()) return;
      }
    });
  }
}

std::error_code client(const fiber::Context& ctx, const std::string& addr) {
  auto c = fiber::dial(ctx, addr);
  if (!c) return c.error();
  const std::string& name = *ctx.value(kName);
  fiber::BufReader r(*c);
  fiber::BufWriter w(*c);
  for (int i = 0; i < 3; ++i) {
    (void)w.write("hello " + std::to_string(i) + " from " + name + "\n");
    if (auto f = w.flush(); !f) return f.error();
    auto line = r.read_until('\n');
    if (!line) return line.error();
    std::printf("%s", line->c_str());
  }
  return {};
}

int main() {
  return fiber::run([] {
    auto [ctx, stop] = fiber::notify_context(fiber::background(), {SIGINT, SIGTERM});
    auto ln = fiber::TcpListener::bind(*fiber::Address::parse("127.0.0.1:0"));
    if (!ln) return std::fprintf(stderr, "upper: %s\n", ln.error().message().c_str()), 1;
    fiber::go([&] { serve(*ln); });
    fiber::ErrGroup g(ctx);
    const std::string addr = ln->local_address()->to_string();
    for (int i = 0; i < 4; ++i) {
      auto cctx = fiber::with_value(g.context(), kName, "client-" + std::to_string(i));
      g.go_on(i % fiber::scheduler_count(), [cctx, &addr] { return client(cctx, addr); });
    }
    std::error_code err = g.wait();
    stop();
    ln->close();
    if (err) return std::fprintf(stderr, "upper: %s\n", err.message().c_str()), 1;
    return 0;
  });
}

// asio_echo: the Boost.Asio peer for echo benchmarks. One io_context run by
// one thread, an async accept loop, and per connection a read_some/write loop
// through a 4 KiB buffer (the same shape as examples/echo and go_echo).
//
//   asio_echo --addr=127.0.0.1:9000
//
// Built twice by tools/bench against Boost >= 1.78 headers: with
// BOOST_ASIO_HAS_IO_URING + BOOST_ASIO_DISABLE_EPOLL (every socket operation
// on io_uring), and plain (epoll). It prints the backend it was built with.
#include <boost/asio.hpp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket s) : socket_(std::move(s)) {}
  void start() { read(); }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(buf_),
                            [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                              if (!ec) self->write(n);
                            });
  }
  void write(size_t n) {
    asio::async_write(socket_, asio::buffer(buf_, n),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        if (!ec) self->read();
                      });
  }
  tcp::socket socket_;
  char buf_[4096];
};

void accept_loop(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](boost::system::error_code ec, tcp::socket s) {
    if (!ec) {
      s.set_option(tcp::no_delay(true));
      std::make_shared<Session>(std::move(s))->start();
    }
    accept_loop(acceptor);
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::string addr = "127.0.0.1:9000";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--addr=", 7) == 0) {
      addr = argv[i] + 7;
    } else {
      std::fprintf(stderr, "usage: %s [--addr=host:port]\n", argv[0]);
      return 2;
    }
  }
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "asio_echo: bad --addr %s\n", addr.c_str());
    return 2;
  }
#if defined(BOOST_ASIO_HAS_IO_URING) && defined(BOOST_ASIO_DISABLE_EPOLL)
  std::fprintf(stderr, "asio_echo: backend io_uring\n");
#else
  std::fprintf(stderr, "asio_echo: backend epoll\n");
#endif
  asio::io_context io(1);
  tcp::endpoint ep(asio::ip::make_address(addr.substr(0, colon)),
                   static_cast<unsigned short>(std::stoi(addr.substr(colon + 1))));
  tcp::acceptor acceptor(io);
  acceptor.open(ep.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen(4096);
  accept_loop(acceptor);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](boost::system::error_code, int) { io.stop(); });
  io.run();
  return 0;
}

// Uses the installed HTTP library (the `http` component): serves one request on
// loopback and prints the body it got back, "42".
#include <cstdio>
#include <string>

#include "fiber/fiber.h"
#include "fiber/http.h"

int main() {
  std::string got = fiber::run([] {
    fiber::http::Server server(
        [](const fiber::http::Request&, fiber::http::ResponseWriter& w) { w.write("42"); });
    auto at = server.listen(*fiber::Address::parse("127.0.0.1:0"));
    if (!at) return std::string("listen failed");
    server.start();
    auto conn = fiber::TcpStream::connect(*at);
    if (!conn) return std::string("connect failed");
    std::string req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (!conn->write_all({req.data(), req.size()})) return std::string("write failed");
    std::string answer;
    char buf[4096];
    for (;;) {
      auto n = conn->read(buf);
      if (!n || *n == 0) break;
      answer.append(buf, *n);
    }
    server.shutdown(std::chrono::seconds(1));
    size_t body = answer.find("\r\n\r\n");
    return body == std::string::npos ? answer : answer.substr(body + 4);
  });
  std::printf("%s\n", got.c_str());
  return got == "42" ? 0 : 1;
}

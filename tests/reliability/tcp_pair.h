// Test helper: a connected TCP pair on 127.0.0.1, both ends owned by the
// calling fiber's core.
#pragma once

#include <gtest/gtest.h>

#include <utility>

#include "fiber/fiber.h"
#include "fiber/net.h"

namespace fiber::testing {

inline TcpListener loopback_listener() {
  auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
  EXPECT_TRUE(ln) << ln.error().message();
  return ln ? std::move(*ln) : TcpListener();
}

// tcp_pair() connects to `ln` and accepts: {accepted end, connecting end}.
// Fiber-only.
inline std::pair<TcpStream, TcpStream> tcp_pair(TcpListener& ln) {
  auto client = spawn([at = *ln.local_address()] { return TcpStream::connect(at); });
  auto accepted = ln.accept();
  auto connected = client.join();
  EXPECT_TRUE(accepted) << accepted.error().message();
  EXPECT_TRUE(connected) << connected.error().message();
  if (!accepted || !connected) return {};
  return {std::move(*accepted), std::move(*connected)};
}

}  // namespace fiber::testing

// Accepting on every core (RELIABILITY.md T27, classic bug B14): two schedulers,
// each with its own SO_REUSEPORT listener on one port and several fibers
// accepting on it. Every connection is accepted exactly once, on both drivers.
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "fiber/fiber.h"
#include "fiber/net.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

class SharedAcceptTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(SharedAcceptTest);

#if defined(FIBER_TEST_TSAN) || defined(__SANITIZE_ADDRESS__)
constexpr int kConnections = 2000;
#else
constexpr int kConnections = 10000;
#endif
constexpr int kAcceptorsPerCore = 4;

TEST_P(SharedAcceptTest, ReusePortListenersOnBothCoresAcceptEachConnectionExactlyOnce) {
  run(
      [] {
        // Each client sends its number; whoever accepts it records the number.
        std::vector<std::atomic<int>> seen(kConnections);
        std::atomic<int> per_core[2] = {0, 0};
        std::atomic<int> accepted{0}, finished{0};
        Address at;
        // The listeners: one per core, made on that core, on one port.
        std::vector<std::unique_ptr<TcpListener>> listeners(2);
        for (unsigned core = 0; core < 2; ++core) {
          spawn_on(core, [&, core] {
            Address bind_at = core == 0 ? *Address::parse("127.0.0.1:0") : at;
            auto ln = TcpListener::bind(bind_at, ListenOptions{.reuse_port = true});
            ASSERT_TRUE(ln) << ln.error().message();
            if (core == 0) at = *ln->local_address();
            listeners[core] = std::make_unique<TcpListener>(std::move(*ln));
          }).join();
        }
        WaitGroup acceptors;
        for (unsigned core = 0; core < 2; ++core) {
          for (int k = 0; k < kAcceptorsPerCore; ++k) {
            acceptors.add(1);
            go_on(core, [&, core] {
              // Until every connection is in: the last one closes the listeners.
              while (accepted.load() < kConnections) {
                auto c = listeners[core]->accept();
                if (!c) break;  // cancelled at the end
                accepted.fetch_add(1);
                per_core[core].fetch_add(1);
                uint32_t id = 0;
                if (c->read_exact({reinterpret_cast<char*>(&id), sizeof id}) && id < kConnections) {
                  seen[id].fetch_add(1);
                }
              }
              finished.fetch_add(1);
              acceptors.done();
            });
          }
        }
        // Clients in batches of 256, well inside the listen backlog.
        for (int first = 0; first < kConnections; first += 256) {
          WaitGroup clients;
          for (int i = first; i < std::min(first + 256, kConnections); ++i) {
            clients.add(1);
            go_on(i % 2, [&, i] {
              auto conn = TcpStream::connect(at);
              uint32_t id = static_cast<uint32_t>(i);
              if (conn) (void)conn->write_all({reinterpret_cast<const char*>(&id), sizeof id});
              clients.done();
            });
          }
          clients.wait();
        }
        // Everything is accepted; wake the acceptors still parked in accept().
        // A cancel acts on the accepts already started, so repeat it until all
        // have seen the count and left. Repeated cancels from another core are
        // coalesced into one fiber on the owner (they once flooded its inbox
        // with a fiber each until it ran out of memory maps).
        while (accepted.load() < kConnections) yield();
        while (finished.load() < 2 * kAcceptorsPerCore) {
          for (auto& ln : listeners) ln->cancel();
          for (int k = 0; k < 16; ++k) yield();
        }
        acceptors.wait();
        for (unsigned core = 0; core < 2; ++core) {
          spawn_on(core, [&, core] { listeners[core].reset(); }).join();
        }
        int once = 0;
        for (auto& s : seen) once += s.load() == 1 ? 1 : 0;
        EXPECT_EQ(accepted.load(), kConnections);
        EXPECT_EQ(once, kConnections) << "a connection was lost or accepted twice";
        EXPECT_GT(per_core[0].load(), 0);
        EXPECT_GT(per_core[1].load(), 0);
      },
      options(2));
}

}  // namespace
}  // namespace fiber

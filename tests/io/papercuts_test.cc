// The papercuts of issue 18: Chan and Ticker constructors, send without
// [[nodiscard]], reuse_port refusing a port someone else listens on, and what a
// plain std::thread may call.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "fiber/all.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class PapercutTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(PapercutTest);

TEST_P(PapercutTest, ChanAndTickerConstructorsReadLikeMakeAndThrowOnBadInput) {
  run(
      [] {
        Chan<int> ch(2);
        EXPECT_EQ(ch.cap(), 2u);
        ch.send(1);  // no (void): a send's failure only means "closed"
        EXPECT_EQ(ch.recv(), 1);
        EXPECT_THROW(Chan<int>(-1), std::invalid_argument);
        EXPECT_FALSE(Chan<int>::make(-1).has_value());  // the checked factory stays
        Chan<int> zero(0);
        EXPECT_EQ(zero.cap(), 0u);
        EXPECT_FALSE(zero.nil());
        Ticker t(1ms);
        EXPECT_TRUE(t.chan().recv().has_value());
        EXPECT_THROW(Ticker(0ms), std::invalid_argument);
      },
      options(1));
}

TEST_P(PapercutTest, ReusePortRefusesAPortThatAnotherSocketListensOn) {
  run(
      [] {
        // "Another process": a listener made behind the runtime's back.
        int other = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(other, 0);
        int one = 1;
        ASSERT_EQ(::setsockopt(other, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
        Address any = *Address::parse("127.0.0.1:0");
        ASSERT_EQ(::bind(other, any.data(), any.size()), 0);
        ASSERT_EQ(::listen(other, 16), 0);
        Address taken;
        ASSERT_EQ(::getsockname(other, taken.data(), taken.size_ptr()), 0);
        auto refused = TcpListener::bind(taken, {.reuse_port = true});
        EXPECT_EQ(refused.error(), std::errc::address_in_use);
        ::close(other);

        // Our own listeners on every core share a port.
        auto first = TcpListener::bind(any, {.reuse_port = true});
        ASSERT_TRUE(first);
        Address at = *first->local_address();
        auto second = spawn_on(1, [at] {
                        auto ln = TcpListener::bind(at, {.reuse_port = true});
                        return ln ? std::error_code() : ln.error();
                      }).join();
        EXPECT_FALSE(second);
        first->close();
        // A plain listener of this process counts as someone else's too.
        auto plain = TcpListener::bind(at);
        ASSERT_TRUE(plain);
        EXPECT_EQ(TcpListener::bind(at, {.reuse_port = true}).error(), std::errc::address_in_use);
      },
      options(2));
}

TEST_P(PapercutTest, APlainThreadMayFeedFibersButNotPark) {
  run(
      [] {
        Chan<int> ch(4);
        Chan<int> done(0);
        WaitGroup wg;
        wg.add(1);
        bool send_threw = false, go_threw = false, go_on_threw = false, lock_threw = false;
        Mutex mu;
        std::thread t([&] {
          EXPECT_FALSE(ch.try_send(1));  // never parks: legal
          EXPECT_FALSE(ch.try_send(2));
          try {
            go_on(1, [] {});  // needs a runtime thread: not legal either
          } catch (const std::logic_error&) {
            go_on_threw = true;
          }
          try {
            ch.send(3);  // may park: not legal
          } catch (const std::logic_error&) {
            send_threw = true;
          }
          try {
            go([] {});  // "this core": there is none
          } catch (const std::logic_error&) {
            go_threw = true;
          }
          mu.lock();  // free: taken without parking
          mu.unlock();
          try {
            Mutex held;
            held.lock();
            std::lock_guard g(held);  // would park
          } catch (const std::logic_error&) {
            lock_threw = true;
          }
          EXPECT_FALSE(done.close());
          wg.done();  // add/done: legal
        });
        wg.wait();
        t.join();
        EXPECT_EQ(done.recv(), std::nullopt);
        ch.close();
        EXPECT_TRUE(send_threw);
        EXPECT_TRUE(go_threw);
        EXPECT_TRUE(go_on_threw);
        EXPECT_TRUE(lock_threw);
        int sum = 0;
        while (auto v = ch.recv()) sum += *v;
        EXPECT_EQ(sum, 3);
      },
      options(2));
}

}  // namespace
}  // namespace fiber

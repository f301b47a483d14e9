// The libc hooks (hook/), linked as libfiber_hook.so: blocking libc calls in a
// fiber park the fiber, not its core; everywhere else they are libc's own.
//
// "Parks the fiber, not the core" is asserted as progress, never as timing: a
// ticker fiber on the same (single) core counts its ticks, and the count must
// move while the other fiber sits in the blocking call. A call that blocked
// the core would stop the ticker, and the count would not move.
#include "fiber/hook.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fiber/blocking.h"
#include "fiber/fiber.h"
#include "fiber/join_handle.h"
#include "fiber/wait_group.h"
#include "tests/support/drivers.h"
#include "tests/support/settle.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class HookTest : public testing::DriverTest {};

// Ticker counts 10 ms ticks in a fiber of the calling core until stopped.
class Ticker {
 public:
  Ticker() {
    go([this] {
      while (!stop_.load()) {
        sleep_for(10ms);
        ticks_.fetch_add(1);
      }
      done_.done();
    });
    done_.add(1);
  }
  ~Ticker() {
    stop_.store(true);
    done_.wait();
  }
  int ticks() const { return ticks_.load(); }
  // wait_ticks() parks until the ticker has ticked `n` more times.
  void wait_ticks(int n) {
    int until = ticks() + n;
    while (ticks() < until) sleep_for(1ms);
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ticks_{0};
  WaitGroup done_;
};

// Watchdog unblocks a test that a broken hook would hang: after a few seconds
// it runs `unblock` on its own thread. Never how a passing test proceeds.
class Watchdog {
 public:
  template <class F>
  explicit Watchdog(F unblock)
      : thread_([this, unblock] {
          auto until = std::chrono::steady_clock::now() + 10s;
          while (!cancelled_.load() && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(5ms);
          }
          if (!cancelled_.load()) unblock();
        }) {}
  ~Watchdog() {
    cancelled_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> cancelled_{false};
  std::thread thread_;
};

TEST_P(HookTest, SleepsParkTheFiber) {
  run(
      [] {
        Ticker ticker;
        auto during = [&](auto call) {
          int before = ticker.ticks();
          call();
          return ticker.ticks() - before;
        };
        EXPECT_GT(during([] { EXPECT_EQ(::usleep(100000), 0); }), 0);
        EXPECT_GT(during([] {
                    timespec ts = {0, 100000000};
                    EXPECT_EQ(::nanosleep(&ts, nullptr), 0);
                  }),
                  0);
        EXPECT_GT(during([] {
                    timespec ts = {0, 100000000};
                    EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr), 0);
                  }),
                  0);
        EXPECT_GT(during([] {
                    timespec now;
                    clock_gettime(CLOCK_REALTIME, &now);
                    now.tv_nsec += 100000000;
                    if (now.tv_nsec >= 1000000000) {
                      now.tv_nsec -= 1000000000;
                      ++now.tv_sec;
                    }
                    EXPECT_EQ(::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &now, nullptr), 0);
                  }),
                  0);
        EXPECT_GT(during([] { EXPECT_EQ(::sleep(1), 0u); }), 0);
        EXPECT_GT(during([] { EXPECT_EQ(::poll(nullptr, 0, 100), 0); }), 0);
        // A bad request is libc's error, at once.
        timespec bad = {0, 2000000000};
        errno = 0;
        EXPECT_EQ(::nanosleep(&bad, nullptr), -1);
        EXPECT_EQ(errno, EINVAL);
      },
      options());
}

TEST_P(HookTest, ReadOnASilentPipeParksTheFiber) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  Watchdog watchdog([&] { (void)!::syscall(SYS_write, fds[1], "w", 1); });
  run(
      [&] {
        Ticker ticker;
        go([&] {
          ticker.wait_ticks(3);
          EXPECT_EQ(::write(fds[1], "x", 1), 1);
        });
        int before = ticker.ticks();
        char c = 0;
        EXPECT_EQ(::read(fds[0], &c, 1), 1);
        EXPECT_EQ(c, 'x');
        EXPECT_GE(ticker.ticks() - before, 3);
      },
      options());
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_P(HookTest, SocketCallsParkTheFiber) {
  run(
      [] {
        Ticker ticker;
        int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(listener, 0);
        sockaddr_in addr = {};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
        ASSERT_EQ(::listen(listener, 16), 0);
        ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
        // The user's O_NONBLOCK is theirs: still blocking after the hooks.
        EXPECT_EQ(::fcntl(listener, F_GETFL) & O_NONBLOCK, 0);
        int before = ticker.ticks();
        auto client = spawn([&] {
          ticker.wait_ticks(3);  // accept() below has parked meanwhile
          int c = ::socket(AF_INET, SOCK_STREAM, 0);
          EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
          ticker.wait_ticks(3);  // recv() on the other side parks meanwhile
          EXPECT_EQ(::send(c, "ping", 4, 0), 4);
          char buf[8];
          EXPECT_EQ(::recv(c, buf, sizeof buf, 0), 4);
          EXPECT_EQ(std::string(buf, 4), "pong");
          EXPECT_EQ(::recv(c, buf, sizeof buf, 0), 0);  // end of stream
          EXPECT_EQ(::close(c), 0);
        });
        int s = ::accept(listener, nullptr, nullptr);
        ASSERT_GE(s, 0);
        EXPECT_GE(ticker.ticks() - before, 3);
        EXPECT_EQ(::fcntl(s, F_GETFL) & O_NONBLOCK, 0);
        before = ticker.ticks();
        char buf[8];
        EXPECT_EQ(::recv(s, buf, sizeof buf, 0), 4);
        EXPECT_GE(ticker.ticks() - before, 3);
        EXPECT_EQ(::fcntl(s, F_GETFL) & O_NONBLOCK, 0);  // still the user's view
        iovec iov[2] = {{const_cast<char*>("po"), 2}, {const_cast<char*>("ng"), 2}};
        EXPECT_EQ(::writev(s, iov, 2), 4);
        EXPECT_EQ(::shutdown(s, SHUT_WR), 0);
        client.join();
        EXPECT_EQ(::close(s), 0);
        EXPECT_EQ(::close(listener), 0);
      },
      options());
}

TEST_P(HookTest, ConnectFailsAsLibcDoes) {
  run(
      [] {
        // A port nobody listens on: bind one, close it, connect to it.
        int l = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr = {};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
        ASSERT_EQ(::getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len), 0);
        ::close(l);
        int c = ::socket(AF_INET, SOCK_STREAM, 0);
        errno = 0;
        EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr), -1);
        EXPECT_EQ(errno, ECONNREFUSED);
        ::close(c);
        char b;
        errno = 0;
        EXPECT_EQ(::read(-1, &b, 1), -1);
        EXPECT_EQ(errno, EBADF);
        errno = 0;
        EXPECT_EQ(::recv(1 << 19, &b, 1, 0), -1);
        EXPECT_EQ(errno, EBADF);
      },
      options());
}

TEST_P(HookTest, ReceiveTimeoutIsHonoured) {
  run(
      [] {
        Ticker ticker;
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        int s = ::dup(sv[0]);  // made by a hooked call: managed
        timeval tv = {0, 100000};
        ASSERT_EQ(::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
        int before = ticker.ticks();
        char b;
        errno = 0;
        EXPECT_EQ(::recv(s, &b, 1, 0), -1);
        EXPECT_EQ(errno, EAGAIN);
        errno = 0;
        EXPECT_EQ(::read(s, &b, 1), -1);
        EXPECT_EQ(errno, EAGAIN);
        EXPECT_GT(ticker.ticks() - before, 0);
        ::close(s);
        ::close(sv[0]);
        ::close(sv[1]);
      },
      options());
}

TEST_P(HookTest, UserNonBlockingFdsSayEagain) {
  run(
      [] {
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_NONBLOCK), 0);
        char b;
        errno = 0;
        EXPECT_EQ(::read(fds[0], &b, 1), -1);
        EXPECT_EQ(errno, EAGAIN);
        EXPECT_NE(::fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
        // Made blocking by the user, then non-blocking again with ioctl.
        ASSERT_EQ(::fcntl(fds[0], F_SETFL, 0), 0);
        EXPECT_EQ(::fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
        int on = 1;
        ASSERT_EQ(::ioctl(fds[0], FIONBIO, &on), 0);
        errno = 0;
        EXPECT_EQ(::read(fds[0], &b, 1), -1);
        EXPECT_EQ(errno, EAGAIN);
        EXPECT_NE(::fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        errno = 0;
        EXPECT_EQ(::recv(sv[0], &b, 1, MSG_DONTWAIT), -1);
        EXPECT_EQ(errno, EAGAIN);
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        EXPECT_NE(::fcntl(s, F_GETFL) & O_NONBLOCK, 0);
        errno = 0;
        EXPECT_EQ(::accept(s, nullptr, nullptr), -1);
        EXPECT_EQ(errno, EINVAL);  // not listening: libc's answer
        for (int fd : {fds[0], fds[1], sv[0], sv[1], s}) ::close(fd);
      },
      options());
}

TEST_P(HookTest, ReaderAndWriterShareAnFd) {
  run(
      [] {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        int a = ::dup(sv[0]);
        int b = ::dup(sv[1]);
        ::close(sv[0]);
        ::close(sv[1]);
        constexpr size_t kBytes = 4 << 20;  // far more than the socket buffers
        // Echo on b; on a, one fiber writes everything while another reads it back.
        auto echo = spawn([b] {
          std::vector<char> buf(65536);
          for (;;) {
            ssize_t n = ::read(b, buf.data(), buf.size());
            if (n <= 0) return;
            for (ssize_t off = 0; off < n;) {
              ssize_t w = ::write(b, buf.data() + off, static_cast<size_t>(n - off));
              ASSERT_GT(w, 0);
              off += w;
            }
          }
        });
        auto writer = spawn([a] {
          std::vector<char> buf(kBytes);
          for (size_t i = 0; i < kBytes; ++i) buf[i] = static_cast<char>(i * 7);
          for (size_t off = 0; off < kBytes;) {
            ssize_t w = ::write(a, buf.data() + off, kBytes - off);
            ASSERT_GT(w, 0);
            off += static_cast<size_t>(w);
          }
        });
        std::vector<char> got;
        std::vector<char> buf(65536);
        while (got.size() < kBytes) {
          ssize_t n = ::read(a, buf.data(), buf.size());
          ASSERT_GT(n, 0);
          got.insert(got.end(), buf.data(), buf.data() + n);
        }
        writer.join();
        for (size_t i = 0; i < kBytes; ++i) ASSERT_EQ(got[i], static_cast<char>(i * 7)) << i;
        ::close(a);
        echo.join();
        ::close(b);
      },
      options());
}

TEST_P(HookTest, CloseWakesTheWaiterWithEbadf) {
  run(
      [] {
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        auto reader = spawn([r = fds[0]] {
          char b;
          errno = 0;
          ssize_t n = ::read(r, &b, 1);
          return std::make_pair(n, errno);
        });
        testing::settle();  // the reader is parked in read()
        EXPECT_EQ(::close(fds[0]), 0);
        auto [n, err] = reader.join();
        EXPECT_EQ(n, -1);
        EXPECT_EQ(err, EBADF);
        // The number, reused, never gets the old operation.
        int again[2];
        ASSERT_EQ(::pipe(again), 0);
        EXPECT_EQ(::write(again[1], "y", 1), 1);
        char b = 0;
        EXPECT_EQ(::read(again[0], &b, 1), 1);
        EXPECT_EQ(b, 'y');
        for (int fd : {fds[1], again[0], again[1]}) ::close(fd);
      },
      options());
}

TEST_P(HookTest, FdsMadeBeforeRunPark) {
  // One made where no hook sees it (as an inherited fd), one by the hooks.
  int raw[2];
  ASSERT_EQ(::syscall(SYS_pipe2, raw, 0), 0);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int hooked = ::dup(sv[0]);
  Watchdog watchdog([&] {
    (void)!::syscall(SYS_write, raw[1], "w", 1);
    (void)!::syscall(SYS_write, sv[1], "w", 1);
  });
  run(
      [&] {
        Ticker ticker;
        go([&] {
          ticker.wait_ticks(3);
          EXPECT_EQ(::write(raw[1], "r", 1), 1);
          ticker.wait_ticks(3);
          EXPECT_EQ(::write(sv[1], "s", 1), 1);
        });
        int before = ticker.ticks();
        char b = 0;
        EXPECT_EQ(::read(raw[0], &b, 1), 1);
        EXPECT_EQ(b, 'r');
        EXPECT_GE(ticker.ticks() - before, 3);
        before = ticker.ticks();
        EXPECT_EQ(::read(hooked, &b, 1), 1);
        EXPECT_EQ(b, 's');
        EXPECT_GE(ticker.ticks() - before, 3);
        // The inherited-like fd's open file was left as it was.
        EXPECT_EQ(::syscall(SYS_fcntl, raw[0], F_GETFL) & O_NONBLOCK, 0);
      },
      options());
  for (int fd : {raw[0], raw[1], sv[0], sv[1], hooked}) ::close(fd);
}

TEST_P(HookTest, FdUsedOnAnotherCore) {
  run(
      [] {
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        // Core 0 waits first (its handle), then a fiber of core 1 waits too.
        auto first = spawn([&] {
          char b = 0;
          EXPECT_EQ(::read(fds[0], &b, 1), 1);
          return b;
        });
        testing::settle();
        EXPECT_EQ(::write(fds[1], "a", 1), 1);
        EXPECT_EQ(first.join(), 'a');
        auto other = spawn_on(1, [&] {
          char b = 0;
          EXPECT_EQ(::read(fds[0], &b, 1), 1);
          return b;
        });
        EXPECT_EQ(::write(fds[1], "b", 1), 1);
        EXPECT_EQ(other.join(), 'b');
        // Closed from core 1 while core 0's fiber waits: EBADF there.
        auto waiter = spawn([&] {
          char b;
          errno = 0;
          ssize_t n = ::read(fds[0], &b, 1);
          return std::make_pair(n, errno);
        });
        testing::settle();
        spawn_on(1, [&] { EXPECT_EQ(::close(fds[0]), 0); }).join();
        auto [n, err] = waiter.join();
        EXPECT_EQ(n, -1);
        EXPECT_EQ(err, EBADF);
        ::close(fds[1]);
      },
      options(2));
}

TEST_P(HookTest, WaitsOnManyFds) {
  run(
      [] {
        Ticker ticker;
        int p[2], q[2];
        ASSERT_EQ(::pipe(p), 0);
        ASSERT_EQ(::pipe(q), 0);
        go([&] {
          ticker.wait_ticks(3);
          EXPECT_EQ(::write(q[1], "q", 1), 1);
        });
        int before = ticker.ticks();
        pollfd fds[2] = {{p[0], POLLIN, 0}, {q[0], POLLIN, 0}};
        EXPECT_EQ(::poll(fds, 2, -1), 1);
        EXPECT_EQ(fds[0].revents, 0);
        EXPECT_EQ(fds[1].revents, POLLIN);
        EXPECT_GE(ticker.ticks() - before, 3);
        char b;
        EXPECT_EQ(::read(q[0], &b, 1), 1);
        // select and pselect, the same way; then a timeout.
        go([&] {
          ticker.wait_ticks(3);
          EXPECT_EQ(::write(p[1], "p", 1), 1);
        });
        before = ticker.ticks();
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(p[0], &rd);
        FD_SET(q[0], &rd);
        EXPECT_EQ(::select(std::max(p[0], q[0]) + 1, &rd, nullptr, nullptr, nullptr), 1);
        EXPECT_TRUE(FD_ISSET(p[0], &rd));
        EXPECT_FALSE(FD_ISSET(q[0], &rd));
        EXPECT_GE(ticker.ticks() - before, 3);
        EXPECT_EQ(::read(p[0], &b, 1), 1);
        before = ticker.ticks();
        FD_ZERO(&rd);
        FD_SET(p[0], &rd);
        timeval tv = {0, 100000};
        EXPECT_EQ(::select(p[0] + 1, &rd, nullptr, nullptr, &tv), 0);
        EXPECT_FALSE(FD_ISSET(p[0], &rd));
        timespec ts = {0, 100000000};
        pollfd one = {p[0], POLLIN, 0};
        EXPECT_EQ(::ppoll(&one, 1, &ts, nullptr), 0);
        EXPECT_GT(ticker.ticks() - before, 0);
        // epoll_wait on an epoll fd.
        int ep = ::epoll_create1(EPOLL_CLOEXEC);
        epoll_event ev = {};
        ev.events = EPOLLIN;
        ev.data.fd = q[0];
        ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev), 0);
        go([&] {
          ticker.wait_ticks(3);
          EXPECT_EQ(::write(q[1], "e", 1), 1);
        });
        before = ticker.ticks();
        epoll_event out;
        EXPECT_EQ(::epoll_wait(ep, &out, 1, -1), 1);
        EXPECT_EQ(out.data.fd, q[0]);
        EXPECT_GE(ticker.ticks() - before, 3);
        // An eventfd, in poll.
        int efd = ::eventfd(0, EFD_CLOEXEC);
        go([&] {
          ticker.wait_ticks(3);
          uint64_t one = 1;
          EXPECT_EQ(::write(efd, &one, sizeof one), 8);
        });
        before = ticker.ticks();
        uint64_t v = 0;
        EXPECT_EQ(::read(efd, &v, sizeof v), 8);
        EXPECT_EQ(v, 1u);
        EXPECT_GE(ticker.ticks() - before, 3);
        for (int fd : {p[0], p[1], q[0], q[1], ep, efd}) ::close(fd);
      },
      options());
}

TEST_P(HookTest, RegularFilesGoToTheDriverOrThePool) {
  run(
      [] {
        char path[] = "/tmp/fiber_hook_XXXXXX";
        int fd = ::mkstemp(path);
        ASSERT_GE(fd, 0);
        ::unlink(path);
        EXPECT_EQ(::write(fd, "hello", 5), 5);
        EXPECT_EQ(::pwrite(fd, "J", 1, 0), 1);
        EXPECT_EQ(::fsync(fd), 0);
        EXPECT_EQ(::fdatasync(fd), 0);
        char buf[8] = {};
        EXPECT_EQ(::pread(fd, buf, 5, 0), 5);
        EXPECT_EQ(std::string(buf, 5), "Jello");
        EXPECT_EQ(::lseek(fd, 1, SEEK_SET), 1);
        EXPECT_EQ(::read(fd, buf, sizeof buf), 4);
        EXPECT_EQ(std::string(buf, 4), "ello");
        EXPECT_EQ(::read(fd, buf, sizeof buf), 0);
        ::close(fd);
      },
      options());
}

TEST_P(HookTest, ResolverRunsOnThePool) {
  run(
      [] {
        // The calling fiber parks while the pool resolves: its core switches.
        auto switches = [] { return stats()[0].context_switches; };
        uint64_t before = switches();
        addrinfo hints = {};
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        ASSERT_EQ(::getaddrinfo("localhost", "80", &hints, &res), 0);
        ASSERT_NE(res, nullptr);
        EXPECT_GT(switches(), before);
        char host[64];
        before = switches();
        EXPECT_EQ(::getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof host, nullptr, 0,
                                NI_NUMERICHOST),
                  0);
        EXPECT_STREQ(host, "127.0.0.1");
        EXPECT_GT(switches(), before);
        ::freeaddrinfo(res);
        hostent he, *result = nullptr;
        char buf[1024];
        int herr = 0;
        before = switches();
        EXPECT_EQ(::gethostbyname_r("localhost", &he, buf, sizeof buf, &result, &herr), 0);
        EXPECT_NE(result, nullptr);
        EXPECT_GT(switches(), before);
        EXPECT_EQ(::getaddrinfo("no-such-host.invalid", nullptr, &hints, &res), EAI_NONAME);
      },
      options());
}

TEST_P(HookTest, LibcOutsideFibersAndWithHooksOff) {
  // A pipe the hooks made non-blocking kernel-side in a fiber...
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  run(
      [&] {
        go([&] { EXPECT_EQ(::write(fds[1], "1", 1), 1); });
        char b;
        EXPECT_EQ(::read(fds[0], &b, 1), 1);
        // ...reads as blocking on a spawn_blocking thread...
        spawn_blocking([&] {
          std::thread writer([&] { EXPECT_EQ(::write(fds[1], "2", 1), 1); });
          char c = 0;
          EXPECT_EQ(::read(fds[0], &c, 1), 1);
          EXPECT_EQ(c, '2');
          writer.join();
        });
        // ...and with the hooks off the core blocks: the control.
        Ticker ticker;
        hook::set_enabled(false);
        EXPECT_FALSE(hook::enabled());
        int before = ticker.ticks();
        ::usleep(50000);
        EXPECT_EQ(ticker.ticks() - before, 0);
        hook::set_enabled(true);
      },
      options());
  // ...and outside the runtime.
  EXPECT_EQ(::fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
  std::thread writer([&] { EXPECT_EQ(::write(fds[1], "3", 1), 1); });
  char c = 0;
  EXPECT_EQ(::read(fds[0], &c, 1), 1);
  EXPECT_EQ(c, '3');
  writer.join();
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_P(HookTest, ForkChildHasTheHooksOff) {
  run(
      [] {
        int fds[2], back[2];
        ASSERT_EQ(::pipe(fds), 0);
        ASSERT_EQ(::pipe(back), 0);
        go([&] { EXPECT_EQ(::write(fds[1], "f", 1), 1); });
        char b;
        EXPECT_EQ(::read(fds[0], &b, 1), 1);  // fds[0] is now non-blocking kernel-side
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
          // The child: no runtime, hooks off, and the pipe blocks as its user expects.
          char c = hook::enabled() ? 'E' : 0;
          if (c == 0 && ::write(fds[1], "k", 1) == 1 && ::read(fds[0], &c, 1) == 1) {
            (void)!::write(back[1], &c, 1);
          }
          _exit(0);
        }
        char got = 0;
        EXPECT_EQ(::read(back[0], &got, 1), 1);
        EXPECT_EQ(got, 'k');
        int status = 0;
        EXPECT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (int fd : {fds[0], fds[1], back[0], back[1]}) ::close(fd);
      },
      options());
}

FIBER_INSTANTIATE_DRIVER_TESTS(HookTest);

}  // namespace
}  // namespace fiber

// Accept at EMFILE (RELIABILITY.md T26, classic bug B15): a server whose fd
// table is full must not busy-loop while connections wait in its backlog, and
// must serve again once fds free up. The server is a child process with its own
// runtime and RLIMIT_NOFILE = 64, accepting as the documentation says to (back
// off on too_many_files_open) and echoing; the test holds 200 connections.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fiber/fiber.h"
#include "fiber/net.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

class EmfileTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(EmfileTest);

constexpr rlim_t kChildFds = 64;
constexpr int kHeld = 200;

// serve() is the child: an echo server on 127.0.0.1 that writes its port to
// `port_fd`, then runs until killed.
[[noreturn]] void serve(DriverKind driver, int port_fd) {
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = kChildFds;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(2);
  Options o;
  o.driver = driver;
  o.schedulers = 1;
  run(
      [port_fd] {
        auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
        if (!ln) _exit(3);
        uint16_t port = ln->local_address()->port();
        if (write(port_fd, &port, sizeof port) != sizeof port) _exit(4);
        close(port_fd);
        for (;;) {
          auto conn = ln->accept();
          if (!conn) {
            // Values, not operator== (a virtual call on the category): UBSan's
            // vptr check needs a free fd to read the memory maps, and at the
            // limit there is none, so it would misreport.
            const int err = conn.error().value();
            if (err == EMFILE || err == ENFILE) {
              sleep_for(std::chrono::milliseconds(10));  // back off, keep serving
            }
            continue;
          }
          go([c = std::move(*conn)]() mutable {
            char buf[512];
            for (;;) {
              auto n = c.read(buf);
              if (!n || *n == 0) return;
              if (!c.write_all({buf, *n})) return;
            }
          });
        }
      },
      o);
  _exit(0);
}

int count_fds(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
  }
  return n;
}

// cpu_seconds() is the user + system CPU time of `pid` so far.
double cpu_seconds(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return -1;
  char buf[1024] = {};
  size_t len = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string stat(buf, len);
  // Fields after the ")" that ends the command name: state is field 3, utime 14.
  size_t at = stat.rfind(')');
  unsigned long utime = 0, stime = 0;
  if (at == std::string::npos ||
      std::sscanf(stat.c_str() + at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                  &utime, &stime) != 2) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int connect_to(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv = {5, 0};  // a hung server fails the test instead of hanging it
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

bool echo_once(int fd, const std::string& msg) {
  if (send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) {
    return false;
  }
  std::string back(msg.size(), '\0');
  size_t got = 0;
  while (got < back.size()) {
    ssize_t n = recv(fd, back.data() + got, back.size() - got, 0);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return back == msg;
}

TEST_P(EmfileTest, AServerOutOfFdsDoesNotSpinAndServesAgainOnceFdsFree) {
  int port_pipe[2];
  ASSERT_EQ(pipe2(port_pipe, O_CLOEXEC), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(port_pipe[0]);
    serve(GetParam(), port_pipe[1]);
  }
  close(port_pipe[1]);
  uint16_t port = 0;
  ssize_t got = read(port_pipe[0], &port, sizeof port);
  close(port_pipe[0]);
  auto stop_child = [child] {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  };
  if (got != sizeof port) {
    stop_child();
    FAIL() << "the server did not start";
  }

  // 200 connections: the server accepts until its fd table is full; the rest
  // wait in its backlog, its listener readable all along.
  std::vector<int> held;
  int connect_errno = 0;
  for (int i = 0; i < kHeld; ++i) {
    int fd = connect_to(port);
    if (fd < 0) {
      connect_errno = errno;
      break;
    }
    held.push_back(fd);
  }
  // A busy machine may refuse a few; far more than the server's fds is what counts.
  if (held.size() <= 2 * kChildFds) {
    for (int fd : held) close(fd);
    stop_child();
    FAIL() << "only " << held.size() << " connections: " << std::strerror(connect_errno);
  }
  bool full = false;
  for (int i = 0; i < 500 && !(full = count_fds(child) >= static_cast<int>(kChildFds)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polls the condition
  }
  EXPECT_TRUE(full) << "the server never reached its fd limit (" << count_fds(child) << " fds)";

  // The held period: the server's CPU time over it is the busy-loop check.
  const double cpu_before = cpu_seconds(child);
  const auto wall_before = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the period measured, not a sync
  const double cpu = cpu_seconds(child) - cpu_before;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
  EXPECT_GE(cpu_before, 0);
  EXPECT_LT(cpu, 0.2 * wall) << "the server used " << cpu << " s of CPU in " << wall
                             << " s at its fd limit: it spins";

  // Release: the server sees each connection end and closes its fds; then it
  // must serve new clients.
  for (int fd : held) close(fd);
  int served = 0;
  for (int i = 0; i < 100; ++i) {
    int fd = connect_to(port);
    if (fd >= 0 && echo_once(fd, "hello " + std::to_string(i))) ++served;
    if (fd >= 0) close(fd);
  }
  EXPECT_EQ(served, 100);
  stop_child();
}

}  // namespace
}  // namespace fiber

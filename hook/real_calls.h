// The libc calls the hooks interpose, listed once (an X-macro), and the way
// the hooks reach the real ones.
//
// The list is read three times: here, to declare the real calls; by
// hook/hooks.cc, which defines each hook; and by hook/CMakeLists.txt, which
// turns every `X(name)` line below into the static library's
// `-Wl,--wrap=name` (so keep one entry a line).
//
// Shared library (libfiber_hook.so): the hook is the symbol `name` itself and
// the real call is the next definition in the lookup order,
// dlsym(RTLD_NEXT, "name"), found on first use. Static library
// (libfiber_hook_static.a): the link's --wrap=name sends every call of `name`
// in the program's objects to `__wrap_name`, the hook, and makes
// `__real_name` the real call.
#pragma once

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

// The calls with a real counterpart.
#define FIBER_HOOK_CALLS(X) \
  X(socket)                 \
  X(connect)                \
  X(accept)                 \
  X(accept4)                \
  X(read)                   \
  X(write)                  \
  X(readv)                  \
  X(writev)                 \
  X(recv)                   \
  X(recvfrom)               \
  X(recvmsg)                \
  X(send)                   \
  X(sendto)                 \
  X(sendmsg)                \
  X(close)                  \
  X(dup)                    \
  X(dup2)                   \
  X(dup3)                   \
  X(fcntl)                  \
  X(fcntl64)                \
  X(ioctl)                  \
  X(setsockopt)             \
  X(poll)                   \
  X(ppoll)                  \
  X(select)                 \
  X(pselect)                \
  X(epoll_wait)             \
  X(sleep)                  \
  X(usleep)                 \
  X(nanosleep)              \
  X(clock_nanosleep)        \
  X(pipe)                   \
  X(pipe2)                  \
  X(eventfd)                \
  X(pread)                  \
  X(pread64)                \
  X(pwrite)                 \
  X(pwrite64)               \
  X(fsync)                  \
  X(fdatasync)              \
  X(getaddrinfo)            \
  X(getnameinfo)            \
  X(gethostbyname_r)

// glibc's _FORTIFY_SOURCE entry points: checked versions of calls above,
// which the hooks define in full (a failed check ends in __chk_fail()).
#define FIBER_HOOK_FORTIFIED(X) \
  X(__read_chk)                 \
  X(__pread_chk)                \
  X(__pread64_chk)              \
  X(__recv_chk)                 \
  X(__recvfrom_chk)             \
  X(__poll_chk)                 \
  X(__ppoll_chk)

namespace fiber::hook::real {

#ifdef FIBER_HOOK_STATIC
#define FIBER_HOOK_DECLARE_REAL(name) extern "C" decltype(::name) __real_##name;
FIBER_HOOK_CALLS(FIBER_HOOK_DECLARE_REAL)
#undef FIBER_HOOK_DECLARE_REAL
#define FIBER_HOOK_REAL_POINTER(name) inline constexpr decltype(&::name) name = &__real_##name;
#else
// resolve() is dlsym(RTLD_NEXT, name); aborts with a message when the name is
// missing (a libc without it cannot run the hooks).
void* resolve(const char* name);
#define FIBER_HOOK_REAL_POINTER(name)                                           \
  inline auto name = [](auto... args) {                                         \
    static const auto fn = reinterpret_cast<decltype(&::name)>(resolve(#name)); \
    return fn(args...);                                                         \
  };
#endif
FIBER_HOOK_CALLS(FIBER_HOOK_REAL_POINTER)
#undef FIBER_HOOK_REAL_POINTER

}  // namespace fiber::hook::real

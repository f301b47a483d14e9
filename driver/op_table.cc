#include "op_table.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace fiber::detail {
namespace {

int32_t result_of(ssize_t n) { return n < 0 ? -errno : static_cast<int32_t>(n); }
unsigned u(int flags) { return static_cast<unsigned>(flags); }

// Stream sockets never raise SIGPIPE: a closed peer is an error value.
constexpr int kSendFlags = MSG_NOSIGNAL;

void prep_recv(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_recv(s, r.fd, r.buf, r.len, r.flags);
}
int32_t try_recv(const IoRequest& r) {
  return result_of(::recv(r.fd, r.buf, r.len, r.flags | MSG_DONTWAIT));
}

void prep_send(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_send(s, r.fd, r.buf, r.len, r.flags | kSendFlags);
}
int32_t try_send(const IoRequest& r) {
  return result_of(::send(r.fd, r.buf, r.len, r.flags | MSG_DONTWAIT | kSendFlags));
}

// read and write use the file position (-1): pipes, ttys, eventfds.
void prep_read(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_read(s, r.fd, r.buf, static_cast<unsigned>(r.len), -1);
}
int32_t try_read(const IoRequest& r) { return result_of(::read(r.fd, r.buf, r.len)); }

void prep_write(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_write(s, r.fd, r.buf, static_cast<unsigned>(r.len), -1);
}
int32_t try_write(const IoRequest& r) { return result_of(::write(r.fd, r.buf, r.len)); }

void prep_recvmsg(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_recvmsg(s, r.fd, r.msg, u(r.flags));
}
int32_t try_recvmsg(const IoRequest& r) {
  return result_of(::recvmsg(r.fd, r.msg, r.flags | MSG_DONTWAIT));
}

void prep_sendmsg(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_sendmsg(s, r.fd, r.msg, u(r.flags | kSendFlags));
}
int32_t try_sendmsg(const IoRequest& r) {
  return result_of(::sendmsg(r.fd, r.msg, r.flags | MSG_DONTWAIT | kSendFlags));
}

// io_uring's accept gives a blocking socket (the ring never needs
// O_NONBLOCK); epoll's needs SOCK_NONBLOCK (socket_flags()).
void prep_accept(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_accept(s, r.fd, r.addr, r.addrlen, SOCK_CLOEXEC);
}
int32_t try_accept(const IoRequest& r) {
  return result_of(::accept4(r.fd, r.addr, r.addrlen, SOCK_CLOEXEC | SOCK_NONBLOCK));
}

void prep_connect(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_connect(s, r.fd, r.addr, static_cast<socklen_t>(r.len));
}
int32_t try_connect(const IoRequest& r) {
  return result_of(::connect(r.fd, r.addr, static_cast<socklen_t>(r.len)));
}

// The outcome of a connect in progress. A readiness wake-up is not a
// completion: until the socket is writable (or failed) the connection is still
// in progress, and SO_ERROR is 0 meanwhile.
int32_t try_connect_result(const IoRequest& r) {
  struct pollfd p = {r.fd, POLLOUT, 0};
  if (::poll(&p, 1, 0) == 0) return -EAGAIN;
  int err = 0;
  socklen_t len = sizeof err;
  return getsockopt(r.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ? -errno : -err;
}

void prep_poll(io_uring_sqe* s, const IoRequest& r) { io_uring_prep_poll_add(s, r.fd, u(r.flags)); }
int32_t try_poll(const IoRequest& r) {
  struct pollfd p = {r.fd, static_cast<short>(r.flags), 0};
  int n = ::poll(&p, 1, 0);
  if (n == 0) return -EAGAIN;
  return n < 0 ? -errno : p.revents;
}

void prep_read_at(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_read(s, r.fd, r.buf, static_cast<unsigned>(r.len), r.offset);
}
int32_t try_read_at(const IoRequest& r) {
  return result_of(::pread(r.fd, r.buf, r.len, static_cast<off_t>(r.offset)));
}

void prep_write_at(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_write(s, r.fd, r.buf, static_cast<unsigned>(r.len), r.offset);
}
int32_t try_write_at(const IoRequest& r) {
  return result_of(::pwrite(r.fd, r.buf, r.len, static_cast<off_t>(r.offset)));
}

void prep_fsync(io_uring_sqe* s, const IoRequest& r) { io_uring_prep_fsync(s, r.fd, 0); }
int32_t try_fsync(const IoRequest& r) { return result_of(::fsync(r.fd)); }

void prep_open_at(io_uring_sqe* s, const IoRequest& r) {
  io_uring_prep_openat(s, AT_FDCWD, r.path, r.flags, r.mode);
}
int32_t try_open_at(const IoRequest& r) {
  return result_of(::openat(AT_FDCWD, r.path, r.flags, r.mode));
}

// One row per IoKind, in the enum's order (checked below). Only connect goes
// on after -EINPROGRESS; the other rows name themselves there, unused.
// clang-format off
constexpr OpTraits kTable[] = {
//  kind                    name              waits            file   eintr  stream transfer            writes in_progress            prepare        try_now
  {IoKind::kRecv,          "recv",           POLLIN,          false, true,  true,  Transfer::kBuffer,  true,  IoKind::kRecv,          prep_recv,     try_recv},
  {IoKind::kSend,          "send",           POLLOUT,         false, true,  true,  Transfer::kBuffer,  false, IoKind::kSend,          prep_send,     try_send},
  {IoKind::kRead,          "read",           POLLIN,          false, true,  false, Transfer::kBuffer,  true,  IoKind::kRead,          prep_read,     try_read},
  {IoKind::kWrite,         "write",          POLLOUT,         false, true,  false, Transfer::kBuffer,  false, IoKind::kWrite,         prep_write,    try_write},
  {IoKind::kRecvMsg,       "recvmsg",        POLLIN,          false, true,  true,  Transfer::kMessage, true,  IoKind::kRecvMsg,       prep_recvmsg,  try_recvmsg},
  {IoKind::kSendMsg,       "sendmsg",        POLLOUT,         false, true,  true,  Transfer::kMessage, false, IoKind::kSendMsg,       prep_sendmsg,  try_sendmsg},
  {IoKind::kAccept,        "accept",         POLLIN,          false, true,  false, Transfer::kAddress, true,  IoKind::kAccept,        prep_accept,   try_accept},
  {IoKind::kConnect,       "connect",        POLLOUT,         false, false, false, Transfer::kNone,    false, IoKind::kConnectResult, prep_connect,  try_connect},
  {IoKind::kConnectResult, "connect_result", POLLOUT,         false, true,  false, Transfer::kNone,    false, IoKind::kConnectResult, nullptr,       try_connect_result},
  {IoKind::kPoll,          "poll",           kWaitsFromFlags, false, true,  false, Transfer::kNone,    false, IoKind::kPoll,          prep_poll,     try_poll},
  {IoKind::kReadAt,        "read_at",        0,               true,  true,  false, Transfer::kBuffer,  true,  IoKind::kReadAt,        prep_read_at,  try_read_at},
  {IoKind::kWriteAt,       "write_at",       0,               true,  true,  false, Transfer::kBuffer,  false, IoKind::kWriteAt,       prep_write_at, try_write_at},
  {IoKind::kFsync,         "fsync",          0,               true,  true,  false, Transfer::kNone,    false, IoKind::kFsync,         prep_fsync,    try_fsync},
  {IoKind::kOpenAt,        "open_at",        0,               true,  true,  false, Transfer::kNone,    false, IoKind::kOpenAt,        prep_open_at,  try_open_at},
};
// clang-format on

constexpr bool rows_in_order() {
  for (size_t i = 0; i < sizeof kTable / sizeof kTable[0]; ++i) {
    if (static_cast<size_t>(kTable[i].kind) != i) return false;
  }
  return true;
}
static_assert(rows_in_order(), "kTable's rows follow IoKind");
static_assert(sizeof kTable / sizeof kTable[0] == kIoKinds, "one row per IoKind");

}  // namespace

const OpTraits& op_traits(IoKind kind) { return kTable[static_cast<size_t>(kind)]; }

}  // namespace fiber::detail

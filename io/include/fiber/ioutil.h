// Go's io helpers over any byte stream: read_full() (io.ReadFull), LimitReader
// (io.LimitReader) and copy() (io.Copy), which moves data between two sockets
// with splice(2) when it can.
//
// ReaderRef and WriterRef refer to anything with Go's Read / Write shape:
//   Result<size_t> read(std::span<char>)          // 0: end of stream
//   Result<size_t> write(std::span<const char>)   // at least one byte
// Stream (and so TcpStream, UnixStream), LimitReader, BufReader and BufWriter
// (fiber/bufio.h) all have it, as may user types. A ref does not own its object.
//
// Threading: as the streams underneath (core-local); the calls park the caller.
//
// Example:
//   char header[8];
//   if (auto r = fiber::read_full(conn, header); !r) return r.error();  // kUnexpectedEof
//   fiber::LimitReader body(conn, length);
//   auto n = fiber::copy(out, body);            // Result<uint64_t>: bytes moved
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <type_traits>

#include "fiber/result.h"
#include "fiber/stream.h"

namespace fiber {

// IoError is what the helpers of fiber/ioutil.h and fiber/bufio.h add to the
// errno codes: Go's io.EOF, io.ErrUnexpectedEOF, bufio.ErrBufferFull,
// io.ErrShortWrite.
enum class IoError { kEof = 1, kUnexpectedEof, kBufferFull, kShortWrite };
// io_category() is IoError's category ("fiber.io"); messages are Go's.
const std::error_category& io_category();
inline std::error_code make_error_code(IoError e) { return {static_cast<int>(e), io_category()}; }

}  // namespace fiber

template <>
struct std::is_error_code_enum<fiber::IoError> : std::true_type {};

namespace fiber {

template <class R>
concept ByteReader = requires(R& r, std::span<char> b) {
  { r.read(b) } -> std::same_as<Result<size_t>>;
};
template <class W>
concept ByteWriter = requires(W& w, std::span<const char> b) {
  { w.write(b) } -> std::same_as<Result<size_t>>;
};

// ReaderRef refers to a ByteReader; the object must outlive the ref.
class ReaderRef {
 public:
  template <ByteReader R>
  requires(!std::is_same_v<std::remove_cv_t<R>, ReaderRef>)  // copies stay copies
      ReaderRef(R& r)  // NOLINT: implicit, so that any reader can be passed
      : obj_(&r), fn_([](void* o, std::span<char> b) { return static_cast<R*>(o)->read(b); }) {}
  Result<size_t> read(std::span<char> b) const { return fn_(obj_, b); }

 private:
  void* obj_;
  Result<size_t> (*fn_)(void*, std::span<char>);
};

// WriterRef refers to a ByteWriter; the object must outlive the ref.
class WriterRef {
 public:
  template <ByteWriter W>
  requires(!std::is_same_v<std::remove_cv_t<W>, WriterRef>)  // copies stay copies
      WriterRef(W& w)  // NOLINT: implicit, so that any writer can be passed
      : obj_(&w),
        fn_([](void* o, std::span<const char> b) { return static_cast<W*>(o)->write(b); }) {}
  Result<size_t> write(std::span<const char> b) const { return fn_(obj_, b); }
  // write_all() writes all of `b`, across short writes.
  Result<void> write_all(std::span<const char> b) const;

 private:
  void* obj_;
  Result<size_t> (*fn_)(void*, std::span<const char>);
};

// read_full() fills `buf`: buf.size() on success; IoError::kEof if the stream
// ended before any byte, IoError::kUnexpectedEof if it ended part way (the bytes
// read are in buf either way). Fiber-only: parks the caller.
Result<size_t> read_full(ReaderRef r, std::span<char> buf);

// LimitReader reads from `r` until `n` bytes have been read, then reports end of
// stream (Go's io.LimitReader).
class LimitReader {
 public:
  LimitReader(ReaderRef r, uint64_t n) : r_(r), left_(n) {}
  // read() reads at most min(buf.size(), remaining()) bytes; 0 at the limit or
  // at the end of `r`.
  Result<size_t> read(std::span<char> buf);
  uint64_t remaining() const { return left_; }

 private:
  ReaderRef r_;
  uint64_t left_;
};

// CopyMode says how copy() between two sockets moves the bytes.
enum class CopyMode {
  kAuto,       // splice(2) through a pipe when both sockets are non-blocking, else kReadWrite
  kReadWrite,  // read into a buffer, write it out
  kSplice,     // splice(2) only; std::errc::operation_not_supported if it cannot
};

// copy() reads from `src` until its end and writes everything to `dst` (Go's
// io.Copy); the number of bytes moved, or the first error (the bytes before it
// were written). Between two sockets it splices: the data does not come up to
// user space. That needs non-blocking fds, which the epoll driver's sockets are;
// under io_uring (blocking fds) kAuto reads and writes. Fiber-only: parks the
// caller.
Result<uint64_t> copy(Stream& dst, Stream& src, CopyMode mode = CopyMode::kAuto);
// copy() between any reader and writer reads and writes through a 32 KiB buffer.
Result<uint64_t> copy(WriterRef dst, ReaderRef src);

}  // namespace fiber

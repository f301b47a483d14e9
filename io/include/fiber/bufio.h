// BufReader and BufWriter buffer any byte stream, as Go's bufio.Reader and
// bufio.Writer: fewer system calls for small reads and writes, and line reading.
// They work over anything fiber/ioutil.h's ReaderRef / WriterRef take (a
// TcpStream, a UnixStream, a LimitReader, ...), which must outlive them, and are
// themselves readers / writers.
//
// Errors are values: the stream's own errors, IoError::kEof at the end of the
// stream, IoError::kBufferFull when peek() asks for more than the buffer holds.
// A BufWriter's first write error sticks: later calls return it. A BufWriter is
// not flushed by its destructor (as in Go): call flush().
//
// Threading: as the stream underneath (core-local); calls that need the stream
// park the caller.
//
// Example:
//   fiber::BufReader in(conn);
//   fiber::BufWriter out(conn);
//   for (;;) {
//     auto line = in.read_line();              // Result<std::string>, no "\n"
//     if (!line) break;                        // IoError::kEof, or the stream's error
//     if (!out.write(*line + "\n") || !out.flush()) break;
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "fiber/ioutil.h"
#include "fiber/result.h"

namespace fiber {

class BufReader {
 public:
  static constexpr size_t kDefaultSize = 4096;
  // BufReader() buffers `r` with a buffer of `size` bytes (at least 16).
  explicit BufReader(ReaderRef r, size_t size = kDefaultSize);

  // read() reads at most buf.size() bytes: from the buffer if it holds any, else
  // with at most one read of the stream. 0 at end of stream.
  Result<size_t> read(std::span<char> buf);
  // peek() returns the next n bytes without consuming them; valid until the next
  // call. IoError::kBufferFull if n exceeds the buffer, IoError::kEof if the
  // stream ends before n bytes (buffered() says how many there are).
  Result<std::string_view> peek(size_t n);
  // discard() skips n bytes; the number skipped (fewer at end of stream).
  Result<size_t> discard(size_t n);
  // read_until() reads up to and including the first `delim` (Go's
  // ReadString). If the stream ends first, it returns what came before the end
  // (without `delim`), and IoError::kEof once nothing is left. More than `max`
  // bytes without `delim` is IoError::kBufferFull (those bytes are consumed).
  Result<std::string> read_until(char delim, size_t max = SIZE_MAX);
  // read_line() is read_until('\n') without the "\n" or "\r\n".
  Result<std::string> read_line(size_t max = SIZE_MAX);
  // buffered() is how many bytes can be read without touching the stream.
  size_t buffered() const { return end_ - start_; }

 private:
  // fill() reads once from the stream into the buffer's free tail (moving what
  // is buffered to the front first); 0 at end of stream.
  Result<size_t> fill();

  ReaderRef r_;
  std::unique_ptr<char[]> buf_;
  size_t size_;
  size_t start_ = 0;  // buffered bytes are [start_, end_)
  size_t end_ = 0;
  bool eof_ = false;
};

class BufWriter {
 public:
  static constexpr size_t kDefaultSize = 4096;
  // BufWriter() buffers writes to `w` in a buffer of `size` bytes (at least 16).
  explicit BufWriter(WriterRef w, size_t size = kDefaultSize);

  // write() takes all of `b` (buffering it, writing the buffer out as it fills,
  // and writing big pieces straight through); b.size() or the sticky error.
  Result<size_t> write(std::span<const char> b);
  Result<size_t> write(std::string_view s) { return write(std::span<const char>(s)); }
  Result<size_t> write(const std::string& s) { return write(std::string_view(s)); }
  Result<size_t> write(const char* s) { return write(std::string_view(s)); }
  // flush() writes out everything buffered.
  Result<void> flush();
  // buffered() is how many bytes wait for flush(); available() how many more fit.
  size_t buffered() const { return n_; }
  size_t available() const { return size_ - n_; }

 private:
  WriterRef w_;
  std::unique_ptr<char[]> buf_;
  size_t size_;
  size_t n_ = 0;
  std::error_code err_;
};

}  // namespace fiber

// BufReader and BufWriter (fiber/bufio.h).
#include "fiber/bufio.h"

#include <algorithm>
#include <cstring>

namespace fiber {

namespace {
constexpr size_t kMinSize = 16;
}  // namespace

BufReader::BufReader(ReaderRef r, size_t size)
    : r_(r), buf_(new char[std::max(size, kMinSize)]), size_(std::max(size, kMinSize)) {}

Result<size_t> BufReader::fill() {
  if (start_ > 0) {
    std::memmove(buf_.get(), buf_.get() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (eof_ || end_ == size_) return size_t{0};
  Result<size_t> n = r_.read({buf_.get() + end_, size_ - end_});
  if (!n) return n.error();
  if (*n == 0) eof_ = true;
  end_ += *n;
  return *n;
}

Result<size_t> BufReader::read(std::span<char> buf) {
  if (buf.empty()) return size_t{0};
  if (start_ == end_) {
    if (eof_) return size_t{0};
    if (buf.size() >= size_) return r_.read(buf);  // a big read: skip the copy
    Result<size_t> n = fill();
    if (!n) return n.error();
    if (*n == 0) return size_t{0};
  }
  size_t n = std::min(buf.size(), end_ - start_);
  std::memcpy(buf.data(), buf_.get() + start_, n);
  start_ += n;
  return n;
}

Result<std::string_view> BufReader::peek(size_t n) {
  if (n > size_) return std::error_code(IoError::kBufferFull);
  while (end_ - start_ < n) {
    if (eof_) return std::error_code(IoError::kEof);
    Result<size_t> got = fill();  // moves the buffered bytes to the front first
    if (!got) return got.error();
  }
  return std::string_view(buf_.get() + start_, n);
}

Result<size_t> BufReader::discard(size_t n) {
  size_t done = 0;
  while (done < n) {
    if (start_ == end_) {
      Result<size_t> got = fill();
      if (!got) return got.error();
      if (*got == 0) break;
    }
    size_t k = std::min(n - done, end_ - start_);
    start_ += k;
    done += k;
  }
  return done;
}

Result<std::string> BufReader::read_until(char delim, size_t max) {
  std::string out;
  for (;;) {
    const char* begin = buf_.get() + start_;
    const size_t avail = end_ - start_;
    if (const void* hit = std::memchr(begin, delim, avail)) {
      size_t k = static_cast<size_t>(static_cast<const char*>(hit) - begin) + 1;
      if (out.size() + k > max) {
        start_ += k;
        return std::error_code(IoError::kBufferFull);
      }
      out.append(begin, k);
      start_ += k;
      return out;
    }
    if (out.size() + avail > max) {
      start_ = end_;
      return std::error_code(IoError::kBufferFull);
    }
    out.append(begin, avail);
    start_ = end_;
    if (eof_) {
      if (out.empty()) return std::error_code(IoError::kEof);
      return out;
    }
    Result<size_t> got = fill();
    if (!got) return got.error();
  }
}

Result<std::string> BufReader::read_line(size_t max) {
  Result<std::string> line = read_until('\n', max == SIZE_MAX ? max : max + 2);
  if (!line) return line.error();
  std::string& s = *line;
  if (!s.empty() && s.back() == '\n') {
    s.pop_back();
    if (!s.empty() && s.back() == '\r') s.pop_back();
  }
  return line;
}

BufWriter::BufWriter(WriterRef w, size_t size)
    : w_(w), buf_(new char[std::max(size, kMinSize)]), size_(std::max(size, kMinSize)) {}

Result<void> BufWriter::flush() {
  if (err_) return err_;
  size_t done = 0;
  while (done < n_) {
    Result<size_t> k = w_.write({buf_.get() + done, n_ - done});
    if (!k || *k == 0) {
      err_ = k ? std::error_code(IoError::kShortWrite) : k.error();
      // Keep what was not written, as Go does.
      std::memmove(buf_.get(), buf_.get() + done, n_ - done);
      n_ -= done;
      return err_;
    }
    done += *k;
  }
  n_ = 0;
  return {};
}

Result<size_t> BufWriter::write(std::span<const char> b) {
  if (err_) return err_;
  const size_t total = b.size();
  while (b.size() > size_ - n_) {
    if (n_ == 0) {  // big, nothing buffered: straight through
      if (Result<void> r = w_.write_all(b); !r) {
        err_ = r.error();
        return err_;
      }
      return total;
    }
    size_t k = size_ - n_;
    std::memcpy(buf_.get() + n_, b.data(), k);
    n_ += k;
    b = b.subspan(k);
    if (Result<void> r = flush(); !r) return r.error();
  }
  std::memcpy(buf_.get() + n_, b.data(), b.size());
  n_ += b.size();
  return total;
}

}  // namespace fiber

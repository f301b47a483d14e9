#include "fiber/internal/stack.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>

#include "fiber/detail/sanitizer.h"
#include "fiber/internal/resource_counts.h"
#include "fiber/stack_size.h"

#if FIBER_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef FIBER_VALGRIND
#include <valgrind/valgrind.h>
#endif

namespace fiber::detail {
namespace {

std::string read_max_map_count() {
  std::string value = "unknown";
  if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    char buf[32] = {};
    if (std::fgets(buf, sizeof buf, f) != nullptr) {
      value = buf;
      while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
    }
    std::fclose(f);
  }
  return value;
}

[[noreturn]] void throw_map_error(int err, const char* what, size_t usable) {
  std::string msg = std::string("fiber: cannot ") + what + " for a " + std::to_string(usable) +
                    "-byte fiber stack";
  if (err == ENOMEM) {
    msg += ": the process is out of memory maps or address space (vm.max_map_count = " +
           read_max_map_count() +
           "; each live fiber uses 2 maps). Raise it, e.g. `sysctl -w vm.max_map_count=1048576`, "
           "check `ulimit -v`, or run fewer live fibers";
  }
  throw std::system_error(err, std::generic_category(), msg);
}

// Cheap sampling: every Nth returned stack is trimmed even if no deep switch was
// seen, to catch stacks that went deep and came back without parking down there.
constexpr uint32_t kTrimEvery = 64;

}  // namespace

size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

size_t check_stack_size(size_t size) {
  if (size < kMinStackSize || size > kMaxStackSize) {
    throw std::invalid_argument("fiber: stack size " + std::to_string(size) + " is outside [" +
                                std::to_string(kMinStackSize) + ", " +
                                std::to_string(kMaxStackSize) + "] bytes");
  }
  const size_t pg = page_size();
  return (size + pg - 1) / pg * pg;
}

ResourceCounts& resource_counts() {
  static ResourceCounts counts;
  return counts;
}

StackPool::~StackPool() {
  for (const Stack& s : trimmed_) unmap(s);
  for (const Stack& s : untrimmed_) unmap(s);
}

namespace {

// take() removes a stack of `usable` bytes from `from` into `out`, searching
// from the back; false when there is none. `keep_order` erases (the rest keep
// their order); otherwise the last stack moves into the hole, in O(1).
bool take(std::vector<Stack>& from, size_t usable, bool keep_order, Stack* out) {
  for (size_t i = from.size(); i-- > 0;) {
    if (from[i].usable() == usable) {
      *out = from[i];
      if (keep_order) {
        from.erase(from.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        from[i] = from.back();
        from.pop_back();
      }
      return true;
    }
  }
  return false;
}

// unpoison() clears the ASan shadow of a whole mapping.
void unpoison([[maybe_unused]] void* base, [[maybe_unused]] size_t len) {
#if FIBER_ASAN
  ASAN_UNPOISON_MEMORY_REGION(base, len);
#endif
}

}  // namespace

Stack StackPool::acquire(size_t usable) {
  Stack s;
  // untrimmed_ keeps its oldest-first order for trim_idle(); trimmed_ has none.
  if (take(untrimmed_, usable, /*keep_order=*/true, &s) ||
      take(trimmed_, usable, /*keep_order=*/false, &s)) {
    ++live_;
    // Frames abandoned by a fiber's final switch leave poisoned redzones behind.
    unpoison(s.base, s.mapped);
    return s;
  }
  const size_t pg = page_size();
  const size_t len = usable + pg;
  void* base = mmap(nullptr, len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) throw_map_error(errno, "map memory", usable);
  // At vm.max_map_count this fails first, before mmap does: never run unguarded.
  if (mprotect(base, pg, PROT_NONE) != 0) {
    int err = errno;
    munmap(base, len);
    throw_map_error(err, "add a guard page", usable);
  }
  // The range may have been someone else's, unmapped with its shadow poisoned.
  unpoison(base, len);
  count_resource(resource_counts().stacks_mapped, 1);
  ++live_;
  s.base = static_cast<char*>(base);
  s.mapped = len;
#ifdef FIBER_VALGRIND
  // A no-op unless running under valgrind. Registered once per mapping: pooled
  // stacks stay registered.
  s.vg_id = VALGRIND_STACK_REGISTER(s.bottom(), s.top());
#endif
  return s;
}

void StackPool::unmap(const Stack& s) {
#ifdef FIBER_VALGRIND
  VALGRIND_STACK_DEREGISTER(s.vg_id);
#endif
  unpoison(s.base, s.mapped);  // the next mapping here must not inherit poison
  munmap(s.base, s.mapped);
  count_resource(resource_counts().stacks_mapped, -1);
}

void StackPool::trim(const Stack& s) {
  const size_t pg = page_size();
  char* keep_from = s.top() - kKeepBytes;
  if (keep_from <= s.bottom()) return;
  size_t len = static_cast<size_t>(keep_from - s.bottom()) / pg * pg;
  if (len > 0) madvise(s.bottom(), len, MADV_DONTNEED);
}

void StackPool::release(Stack s, uintptr_t low_water) {
  --live_;
  if (cached() >= kMaxCached) {
    unmap(s);
    return;
  }
  bool deep = low_water < reinterpret_cast<uintptr_t>(s.top() - kKeepBytes);
  if (deep || ++releases_ % kTrimEvery == 0) {
    trim(s);
    trimmed_.push_back(s);
  } else {
    untrimmed_.push_back(s);
  }
}

size_t StackPool::trim_idle(size_t max) {
  const size_t n = std::min(max, untrimmed_.size());
  if (n == 0) return 0;
  const auto first = untrimmed_.begin();
  const auto last = first + static_cast<std::ptrdiff_t>(n);
  for (auto it = first; it != last; ++it) trim(*it);
  trimmed_.insert(trimmed_.end(), first, last);
  untrimmed_.erase(first, last);
  return n;
}

}  // namespace fiber::detail

// Small string helpers. Debian's Abseil is built with its own string_view type
// (ABSL_USES_STD_STRING_VIEW is off), which does not convert from
// std::string_view; av() bridges the two for absl::StrCat and friends.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace fiber::http::detail {

inline absl::string_view av(std::string_view s) { return {s.data(), s.size()}; }

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// iequals() compares ASCII case-insensitively (header names, tokens).
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

inline bool iends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

}  // namespace fiber::http::detail

#include "cpu_list.h"

#include <charconv>

namespace mixedvm {
namespace {

// Parses a decimal index at the start of `s`; advances `s` past it.
bool TakeIndex(std::string_view& s, std::size_t& value) {
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr == begin) return false;
  s.remove_prefix(static_cast<std::size_t>(ptr - begin));
  return true;
}

CpuListResult Fail(std::string message) {
  CpuListResult r;
  r.error = std::move(message);
  return r;
}

}  // namespace

CpuListResult ParseCpuList(std::string_view text, std::size_t n) {
  CpuListResult result;
  result.selected.assign(n, false);
  if (text.empty()) {
    result.ok = true;
    return result;
  }
  const std::string whole(text);
  std::string_view rest = text;
  while (true) {
    std::size_t first = 0;
    if (!TakeIndex(rest, first)) {
      return Fail("invalid vCPU list '" + whole + "': expected a number at '" +
                  std::string(rest) + "'");
    }
    std::size_t last = first;
    if (!rest.empty() && rest.front() == '-') {
      rest.remove_prefix(1);
      if (!TakeIndex(rest, last)) {
        return Fail("invalid vCPU list '" + whole + "': range " +
                    std::to_string(first) + "- has no end");
      }
      if (last < first) {
        return Fail("invalid vCPU list '" + whole + "': range " +
                    std::to_string(first) + "-" + std::to_string(last) +
                    " is reversed");
      }
    }
    if (last >= n) {
      return Fail("invalid vCPU list '" + whole + "': vCPU " +
                  std::to_string(last) + " does not exist (the guest has " +
                  std::to_string(n) + " vCPUs, 0-" +
                  std::to_string(n == 0 ? 0 : n - 1) + ")");
    }
    for (std::size_t i = first; i <= last; ++i) result.selected[i] = true;
    if (rest.empty()) break;
    if (rest.front() != ',' && rest.front() != ':') {
      return Fail("invalid vCPU list '" + whole + "': unexpected '" +
                  std::string(1, rest.front()) + "'");
    }
    rest.remove_prefix(1);
    if (rest.empty()) {
      return Fail("invalid vCPU list '" + whole + "': trailing separator");
    }
  }
  result.ok = true;
  return result;
}

}  // namespace mixedvm

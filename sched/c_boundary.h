// What every C entry point of libmixedvm shares: QEMU is C and unwinds TCG
// execution with siglongjmp, so no C++ exception may cross into it. An entry
// point runs its body under Guarded() and reports failure as a message in
// the caller's buffer.
#pragma once

#include <cstddef>
#include <cstdio>
#include <exception>
#include <string>

namespace mixedvm {

inline void WriteError(char* err, std::size_t errlen, const std::string& message) {
  if (err == nullptr || errlen == 0) return;
  std::snprintf(err, errlen, "%s", message.c_str());
}

// Runs fn (which returns true on success, or writes err and returns false),
// turning any exception into an error message.
template <typename Fn>
bool Guarded(char* err, std::size_t errlen, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::exception& e) {
    WriteError(err, errlen, std::string("internal error: ") + e.what());
  } catch (...) {
    WriteError(err, errlen, "internal error: unknown exception");
  }
  return false;
}

}  // namespace mixedvm

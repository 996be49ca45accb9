// Parsing of vCPU lists ("0-2,5"), as given to -accel mixed,tcg-cpus=LIST.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mixedvm {

struct CpuListResult {
  bool ok = false;
  std::vector<bool> selected;  // size n when ok
  std::string error;           // set when !ok
};

// Parses a list of indexes and inclusive ranges "a-b", separated by ',' or
// ':'. On QEMU's command line a ',' must be doubled (tcg-cpus=0,,2), so ':'
// (tcg-cpus=0:2) is offered as the readable form.
// Every index must be < n. Whitespace is not accepted, because QEMU's option
// parser never produces it and accepting it would hide typos.
// An empty list is valid and selects nothing.
CpuListResult ParseCpuList(std::string_view text, std::size_t n);

}  // namespace mixedvm

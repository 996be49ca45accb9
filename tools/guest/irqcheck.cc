// irqcheck: IOAPIC level-triggered interrupts reach every vCPU, checked from the guest.
//
//   irqcheck [--seconds S] [--timeout-ms T] [--modules DIR] [--no-spin] [--inject-fault N]
//
//   --seconds     how long to raise interrupts (default 8; fractions allowed)
//   --timeout-ms  how long one interrupt may take to arrive (default 2000)
//   --modules     where uio.ko and uio_pci_generic.ko are (default /lib/modules); they
//                 are loaded with finit_module() unless uio_pci_generic is there already
//   --no-spin     do not keep the other CPUs busy in user mode
//   --inject-fault N  leave INTx masked after interrupt N, so that interrupt N+1 is never
//                 delivered: shows that the check catches a lost interrupt (a timeout FAIL)
//
// The interrupt source is QEMU's `edu` PCI device (hw/misc/edu.c; -device edu). Writing
// bits to BAR0+0x60 sets them in its interrupt status (BAR0+0x24) and asserts INTx, a
// level-triggered PCI interrupt that the q35 IOAPIC receives on a GSI of 16-23. It stays
// asserted until the same bits are written to BAR0+0x64. The guest kernel's
// uio_pci_generic drives the device: its handler masks INTx through the PCI command
// register's INTx-disable bit (bit 10) and wakes readers of /dev/uioN, whose read()
// returns the total interrupt count. Linux 6.1's uio_pci_generic has no irqcontrol, so a
// write to /dev/uioN fails (ENOSYS); INTx is re-enabled here by clearing bit 10 through
// /sys/bus/pci/devices/<bdf>/config, as the kernel's UIO howto does.
//
// Each round: write the target CPU (round robin over the online CPUs) to
// /proc/irq/N/smp_affinity_list; read /proc/irq/N/effective_affinity_list (an IOAPIC
// without interrupt remapping moves an interrupt only when it next fires, so the route
// may lag the target by a round: the interrupt goes where the effective affinity says);
// read the IRQ's row of /proc/interrupts; raise one bit; poll() /dev/uioN with a
// timeout; read the count; check the device's status and the INTx mask; acknowledge;
// re-enable INTx; read the row again.
//
// Checks, each a FAIL:
// - the interrupt arrives within the timeout ("timeout ... aimed at CPU t, routed to
//   CPU e": a lost interrupt);
// - it arrives exactly once: the uio count advances by one per raise, nothing is pending
//   before a raise or after the last one, and the row's total rises by one per round;
// - it lands where it was sent: exactly one per-CPU count rises by one, on the CPU the
//   effective affinity named before the raise or on the target just written (the previous
//   interrupt wakes us before its EOI, which is where a pending move is applied, so a
//   move can still happen between our read and the raise);
// - the device saw it handled: status holds exactly the raised bit until acknowledged,
//   and the handler had set INTx-disable;
// - at the end, every CPU the interrupt was aimed at got some (its per-CPU count rose),
//   and the per-CPU counts equal the rounds routed to each CPU;
// - the IRQ is level-triggered (/sys/kernel/irq/N/type).
//
// Meanwhile one thread per online CPU other than the main thread's (the first online CPU)
// spins in pure user mode, so most interrupts find their CPU busy in user mode: on a PVM
// host, on KVM when the vCPU is placed there. The main thread's CPU is idle in the kernel
// while it waits. The spinners stop (by a flag in memory, which needs no interrupt) before
// the result is printed, so even a broken delivery path ends with a FAIL line.
//
// Output: informational "irqcheck: ..." lines, including the IRQ's row of
// /proc/interrupts and the kernel log's x2apic / APIC routing lines; then
//   IRQCHECK APIC mode=xAPIC|x2APIC driver=<apic driver> dest=logical|physical|? ...
//   IRQCHECK PASS n=<rounds> per-cpu=<cpu>:<count>,... ...   or   IRQCHECK FAIL <why>
// Exit 0 only on PASS; 1 on FAIL; 2 on a usage or setup error (also with a FAIL line).
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pin.h"

namespace {

constexpr uint32_t kEduIdent = 0x010000ed;
constexpr size_t kRegIdent = 0x00, kRegLive = 0x04, kRegIrqStatus = 0x24, kRegIrqRaise = 0x60,
                 kRegIrqAck = 0x64;
constexpr uint16_t kIntxDisable = 1u << 10;   // PCI command register
constexpr uint16_t kStatusInterrupt = 1u << 3;  // PCI status register

const char kUsage[] =
    "usage: irqcheck [--seconds S] [--timeout-ms T] [--modules DIR] [--no-spin] "
    "[--inject-fault N]\n";

[[noreturn]] void SetupFail(const std::string& why) {
  std::printf("IRQCHECK FAIL setup: %s\n", why.c_str());
  std::fflush(stdout);
  std::exit(2);
}

std::string Errno() { return std::strerror(errno); }

std::optional<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  close(fd);
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace((unsigned char)s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace((unsigned char)s[i])) ++i;
  return s.substr(i);
}

// Split on `sep` (lines: '\n'); no <sstream>, whose locale machinery would double the
// size of this static binary.
std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = std::min(text.find(sep, pos), text.size());
    parts.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return parts;
}

std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace((unsigned char)text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !std::isspace((unsigned char)text[i])) ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

// 0 on success, else errno.
int WriteFile(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const ssize_t n = write(fd, text.data(), text.size());
  const int err = n < 0 ? errno : (size_t(n) == text.size() ? 0 : EIO);
  close(fd);
  return err;
}

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// "0-3,5" -> {0,1,2,3,5}; empty on a parse error.
std::vector<int> ParseCpuList(const std::string& text) {
  std::vector<int> cpus;
  for (const std::string& item : Split(Trim(text), ',')) {
    char* end = nullptr;
    const long lo = std::strtol(item.c_str(), &end, 10);
    long hi = lo;
    if (end == item.c_str()) return {};
    if (*end == '-') {
      const char* rest = end + 1;
      hi = std::strtol(rest, &end, 10);
      if (end == rest) return {};
    }
    if (*end != '\0' || lo < 0 || hi < lo || hi >= CPU_SETSIZE) return {};
    for (long c = lo; c <= hi; ++c) cpus.push_back(int(c));
  }
  return cpus;
}

std::string JoinCpus(const std::vector<int>& cpus) {
  std::string s;
  for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

double Now() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

// One IRQ's row of /proc/interrupts: counts by CPU number, and the text after them
// (chip, hwirq-flow handler, action names), e.g. "IO-APIC  16-fasteoi   uio_pci_generic".
struct IrqRow {
  std::map<int, unsigned long> counts;
  std::string desc;
  std::string line;
  unsigned long Total() const {
    unsigned long t = 0;
    for (const auto& [cpu, n] : counts) t += n;
    return t;
  }
};

std::optional<IrqRow> ReadIrqRow(int irq) {
  const auto text = ReadFile("/proc/interrupts");
  if (!text) return std::nullopt;
  const std::vector<std::string> lines = Split(*text, '\n');
  if (lines.empty()) return std::nullopt;
  std::vector<int> columns;
  for (const std::string& word : Words(lines[0]))
    if (word.rfind("CPU", 0) == 0) columns.push_back(std::atoi(word.c_str() + 3));
  const std::string key = std::to_string(irq) + ":";
  for (size_t l = 1; l < lines.size(); ++l) {
    const std::vector<std::string> words = Words(lines[l]);
    if (words.empty() || words[0] != key) continue;
    if (words.size() < 1 + columns.size()) return std::nullopt;
    IrqRow row;
    row.line = lines[l];
    for (size_t c = 0; c < columns.size(); ++c)
      row.counts[columns[c]] = std::strtoul(words[1 + c].c_str(), nullptr, 10);
    // The rest, without the column padding: "IO-APIC 16-fasteoi uio_pci_generic".
    for (size_t w = 1 + columns.size(); w < words.size(); ++w)
      row.desc += (row.desc.empty() ? "" : " ") + words[w];
    return row;
  }
  return std::nullopt;
}

// The kernel log lines about x2APIC and the APIC driver, and what they say.
struct ApicInfo {
  std::vector<std::string> lines;
  std::string mode = "xAPIC";
  std::string driver = "flat";   // x86-64's default apic driver, kept when none is switched to
  std::string dest = "logical";
  bool cpuid_x2apic = false;
};

std::string Lower(std::string s) {
  for (char& c : s) c = char(std::tolower((unsigned char)c));
  return s;
}

ApicInfo ReadApicInfo() {
  ApicInfo info;
  const int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, nullptr, 0);
  std::string log;
  if (size > 0) {
    log.resize(size_t(size));
    const int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log.data(), size);
    log.resize(n > 0 ? size_t(n) : 0);
  }
  bool x2apic_enabled = false;
  for (const std::string& line : Split(log, '\n')) {
    const std::string low = Lower(line);
    if (low.find("x2apic") == std::string::npos && low.find("apic routing") == std::string::npos)
      continue;
    info.lines.push_back(line);
    if (low.find("x2apic enabled") != std::string::npos ||
        low.find("enabled by bios, switching to x2apic") != std::string::npos)
      x2apic_enabled = true;
    const size_t to = low.find("apic routing to");
    if (to != std::string::npos) {
      std::string d = Trim(line.substr(to + std::strlen("apic routing to")));
      while (!d.empty() && (d.front() == ':' || d.front() == ' ')) d.erase(0, 1);
      while (!d.empty() && d.back() == '.') d.pop_back();
      info.driver = d;
    }
  }
  const std::string drv = Lower(info.driver);
  if (x2apic_enabled || drv.find("x2apic") != std::string::npos) info.mode = "x2APIC";
  if (drv == "flat" || drv.find("cluster") != std::string::npos) info.dest = "logical";
  else if (drv.find("phys") != std::string::npos) info.dest = "physical";
  else info.dest = "?";
  if (const auto cpuinfo = ReadFile("/proc/cpuinfo")) {
    for (const std::string& line : Split(*cpuinfo, '\n'))
      if (line.rfind("flags", 0) == 0) {
        info.cpuid_x2apic = (" " + line + " ").find(" x2apic ") != std::string::npos;
        break;
      }
  }
  return info;
}

void LoadModule(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) SetupFail("cannot open " + path + ": " + Errno());
  if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
    SetupFail("finit_module(" + path + "): " + Errno());
  close(fd);
}

std::string FindEdu() {
  for (const std::string& bdf : ListDir("/sys/bus/pci/devices")) {
    const std::string dir = "/sys/bus/pci/devices/" + bdf;
    if (Trim(ReadFile(dir + "/vendor").value_or("")) == "0x1234" &&
        Trim(ReadFile(dir + "/device").value_or("")) == "0x11e8")
      return bdf;
  }
  return {};
}

struct Mmio {
  volatile uint32_t* base = nullptr;
  uint32_t Read(size_t off) const { return base[off / 4]; }
  void Write(size_t off, uint32_t v) const { base[off / 4] = v; }
};

struct PciConfig {
  int fd = -1;
  // command | status << 16
  uint32_t CommandStatus() const {
    uint32_t v = 0;
    if (pread(fd, &v, 4, 4) != 4) SetupFail("reading the PCI command register: " + Errno());
    return v;
  }
  bool EnableIntx() const {
    const uint16_t cmd = uint16_t(CommandStatus()) & ~kIntxDisable;
    return pwrite(fd, &cmd, 2, 4) == 2;
  }
};

long UioEvents(const std::string& uio) {
  return std::atol(ReadFile("/sys/class/uio/" + uio + "/event").value_or("-1").c_str());
}

struct Options {
  double seconds = 8;
  int timeout_ms = 2000;
  std::string modules = "/lib/modules";
  bool spin = true;
  unsigned long inject_fault = 0;
};

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "irqcheck: missing value after %s\n%s", a.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seconds") {
      o.seconds = std::atof(value().c_str());
    } else if (a == "--timeout-ms") {
      o.timeout_ms = std::atoi(value().c_str());
    } else if (a == "--modules") {
      o.modules = value();
    } else if (a == "--inject-fault") {
      o.inject_fault = std::strtoul(value().c_str(), nullptr, 10);
    } else if (a == "--no-spin") {
      o.spin = false;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "irqcheck: unknown option %s\n%s", a.c_str(), kUsage);
      std::exit(2);
    }
  }
  if (!(o.seconds > 0) || o.timeout_ms <= 0) {
    std::fprintf(stderr, "irqcheck: --seconds and --timeout-ms must be positive\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const Options opt = ParseArgs(argc, argv);

  // --- the device, its driver and its IRQ
  if (access("/sys/bus/pci/drivers/uio_pci_generic", F_OK) != 0) {
    LoadModule(opt.modules + "/uio.ko");
    LoadModule(opt.modules + "/uio_pci_generic.ko");
  }
  const std::string bdf = FindEdu();
  if (bdf.empty()) SetupFail("no edu device (1234:11e8): start QEMU with -device edu");
  const std::string dev = "/sys/bus/pci/devices/" + bdf;
  if (access((dev + "/driver").c_str(), F_OK) != 0) {
    const int err = WriteFile("/sys/bus/pci/drivers/uio_pci_generic/new_id", "1234 11e8");
    if (err && err != EEXIST) SetupFail("binding uio_pci_generic: " + std::string(std::strerror(err)));
  }
  std::string uio;
  for (int i = 0; i < 200 && uio.empty(); ++i) {
    const auto names = ListDir(dev + "/uio");
    if (!names.empty()) uio = names.front();
    else usleep(10000);
  }
  if (uio.empty()) SetupFail(bdf + " has no uio device: uio_pci_generic did not bind (see dmesg)");
  const int irq = std::atoi(ReadFile(dev + "/irq").value_or("0").c_str());
  if (irq <= 0) SetupFail(bdf + " has no IRQ");

  const int uio_fd = open(("/dev/" + uio).c_str(), O_RDWR | O_CLOEXEC);
  if (uio_fd < 0) SetupFail("open /dev/" + uio + ": " + Errno());
  PciConfig cfg{open((dev + "/config").c_str(), O_RDWR | O_CLOEXEC)};
  if (cfg.fd < 0) SetupFail("open " + dev + "/config: " + Errno());
  const int bar_fd = open((dev + "/resource0").c_str(), O_RDWR | O_SYNC | O_CLOEXEC);
  if (bar_fd < 0) SetupFail("open " + dev + "/resource0: " + Errno());
  struct stat st {};
  fstat(bar_fd, &st);
  const size_t bar_size = st.st_size > 0 ? size_t(st.st_size) : 1 << 20;
  void* bar = mmap(nullptr, bar_size, PROT_READ | PROT_WRITE, MAP_SHARED, bar_fd, 0);
  if (bar == MAP_FAILED) SetupFail("mmap " + dev + "/resource0: " + Errno());
  const Mmio mmio{static_cast<volatile uint32_t*>(bar)};
  if (mmio.Read(kRegIdent) != kEduIdent) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "edu ident 0x%08x, expected 0x%08x", mmio.Read(kRegIdent),
                  kEduIdent);
    SetupFail(buf);
  }
  mmio.Write(kRegLive, 0x5a5a1234);
  if (mmio.Read(kRegLive) != ~0x5a5a1234u) SetupFail("edu liveness register does not invert");

  // Linux 6.1's uio_pci_generic has no irqcontrol: show which way INTx gets re-enabled.
  const int32_t one = 1;
  const bool irqcontrol = write(uio_fd, &one, sizeof one) == sizeof one;
  std::printf("irqcheck: edu at %s, irq %d, /dev/%s; INTx re-enabled through %s\n", bdf.c_str(),
              irq, uio.c_str(),
              irqcontrol ? "/dev/uio irqcontrol (and config space)"
                         : ("config space (write to /dev/uio: " + Errno() + ")").c_str());
  mmio.Write(kRegIrqAck, ~0u);
  cfg.EnableIntx();

  // --- what is being tested: the trigger mode and the APIC mode
  const auto row0 = ReadIrqRow(irq);
  if (!row0) SetupFail("irq " + std::to_string(irq) + " is not in /proc/interrupts");
  std::printf("irqcheck: /proc/interrupts: %s\n", Trim(row0->line).c_str());
  const std::string type = Trim(ReadFile("/sys/kernel/irq/" + std::to_string(irq) + "/type")
                                    .value_or("?"));
  const ApicInfo apic = ReadApicInfo();
  for (const std::string& l : apic.lines) std::printf("irqcheck: dmesg: %s\n", l.c_str());
  std::string chip = row0->desc;
  if (const size_t uio_pos = chip.rfind(" uio_pci_generic"); uio_pos != std::string::npos)
    chip.erase(uio_pos);
  std::printf("IRQCHECK APIC mode=%s driver=\"%s\" dest=%s cpuid-x2apic=%s irq=%d chip=\"%s\" "
              "type=%s\n",
              apic.mode.c_str(), apic.driver.c_str(), apic.dest.c_str(),
              apic.cpuid_x2apic ? "yes" : "no", irq, chip.c_str(), type.c_str());
  if (type != "level") {
    std::printf("IRQCHECK FAIL irq %d is %s-triggered (\"%s\"), not level-triggered: this run "
                "does not test what it should\n", irq, type.c_str(), chip.c_str());
    return 1;
  }

  // --- CPUs: the main thread on the first, spinners in user mode on the others
  std::vector<int> cpus = ParseCpuList(ReadFile("/sys/devices/system/cpu/online").value_or(""));
  if (cpus.empty()) SetupFail("cannot read /sys/devices/system/cpu/online");
  const int main_cpu = cpus.front();
  if (std::string e = PinToCpu(main_cpu); !e.empty()) SetupFail(e);
  std::atomic<bool> stop{false};
  std::vector<int> spin_cpus;
  if (opt.spin)
    for (int c : cpus)
      if (c != main_cpu) spin_cpus.push_back(c);
  std::vector<std::atomic<unsigned long>> spins(spin_cpus.size());
  std::vector<std::thread> spinners;
  for (size_t i = 0; i < spin_cpus.size(); ++i)
    spinners.emplace_back([&, i] {
      if (!PinToCpu(spin_cpus[i]).empty()) return;
      unsigned long n = 0;
      while (!stop.load(std::memory_order_relaxed))
        if ((++n & 0xfffff) == 0) spins[i].store(n, std::memory_order_relaxed);
      spins[i].store(n, std::memory_order_relaxed);
    });
  std::printf("irqcheck: main thread on CPU %d, spinning in user mode on CPUs %s; raising for "
              "%.3g s, timeout %d ms\n", main_cpu,
              spin_cpus.empty() ? "none" : JoinCpus(spin_cpus).c_str(), opt.seconds,
              opt.timeout_ms);

  // --- the rounds
  const std::string affinity = "/proc/irq/" + std::to_string(irq) + "/smp_affinity_list";
  const std::string effective = "/proc/irq/" + std::to_string(irq) + "/effective_affinity_list";
  const long uio_events0 = UioEvents(uio);
  unsigned long uio_count = (unsigned long)uio_events0;
  std::map<int, unsigned long> aimed, landed;  // rounds aimed at / landing on each CPU
  unsigned long rounds = 0, lagging = 0, late_moves = 0, affinity_errors = 0;
  std::string fail;
  const double t0 = Now();
  double worst_ms = 0;
  while (fail.empty() && Now() - t0 < opt.seconds) {
    const int target = cpus[rounds % cpus.size()];
    const uint32_t bit = 1u << (rounds % 32);
    char where[160];
    if (WriteFile(affinity, std::to_string(target)) != 0) ++affinity_errors;
    const std::vector<int> eff = ParseCpuList(ReadFile(effective).value_or(""));
    if (eff.size() != 1 || eff[0] != target) ++lagging;
    std::snprintf(where, sizeof where, "interrupt #%lu aimed at CPU %d (routed to CPU %s)",
                  rounds + 1, target, eff.empty() ? "?" : JoinCpus(eff).c_str());
    const auto before = ReadIrqRow(irq);
    pollfd pfd{uio_fd, POLLIN, 0};
    if (poll(&pfd, 1, 0) != 0) {
      fail = std::string("an interrupt arrived before ") + where + " was raised";
      break;
    }
    const double t_raise = Now();
    mmio.Write(kRegIrqRaise, bit);
    const int ready = poll(&pfd, 1, opt.timeout_ms);
    const double ms = (Now() - t_raise) * 1e3;
    if (ready <= 0) {
      const uint32_t cs = cfg.CommandStatus();
      const auto now = ReadIrqRow(irq);
      char buf[768];
      std::snprintf(buf, sizeof buf,
                    "timeout: %s did not arrive within %d ms (lost); device status 0x%x, "
                    "INTx-disable %d, PCI status.interrupt %d, row now: %s",
                    where, opt.timeout_ms, mmio.Read(kRegIrqStatus), (cs & kIntxDisable) ? 1 : 0,
                    ((cs >> 16) & kStatusInterrupt) ? 1 : 0,
                    now ? Trim(now->line).c_str() : "?");
      fail = buf;
      break;
    }
    worst_ms = std::max(worst_ms, ms);
    uint32_t count = 0;
    if (read(uio_fd, &count, sizeof count) != sizeof count) {
      fail = "read /dev/" + uio + ": " + Errno();
      break;
    }
    const uint32_t status = mmio.Read(kRegIrqStatus);
    const uint32_t cs = cfg.CommandStatus();
    mmio.Write(kRegIrqAck, bit);
    const uint32_t status_after = mmio.Read(kRegIrqStatus);
    if (rounds + 1 != opt.inject_fault && !cfg.EnableIntx()) {
      fail = "re-enabling INTx through " + dev + "/config: " + Errno();
      break;
    }
    const auto after = ReadIrqRow(irq);
    char buf[512];
    if (count != uio_count + 1) {
      std::snprintf(buf, sizeof buf, "uio count went from %lu to %u for %s: not exactly once",
                    uio_count, count, where);
      fail = buf;
      break;
    }
    uio_count = count;
    if (status != bit || status_after != 0) {
      std::snprintf(buf, sizeof buf, "device status 0x%x (expected 0x%x), 0x%x after the ack, for %s",
                    status, bit, status_after, where);
      fail = buf;
      break;
    }
    if (!(cs & kIntxDisable)) {
      fail = std::string("the handler did not mask INTx for ") + where;
      break;
    }
    if (!before || !after) {
      fail = "irq " + std::to_string(irq) + " vanished from /proc/interrupts";
      break;
    }
    int rose = -1;
    unsigned long total = 0;
    for (const auto& [cpu, n] : after->counts) {
      const unsigned long d = n - before->counts.at(cpu);
      total += d;
      if (d) rose = cpu;
    }
    // The route: the effective affinity read before the raise, or the target just
    // written if the previous interrupt's flow on its CPU was still running (it wakes us
    // before its EOI, which is where a pending move is applied).
    const bool on_route = std::find(eff.begin(), eff.end(), rose) != eff.end();
    if (!on_route && rose == target) ++late_moves;
    if (total != 1 || (!on_route && rose != target)) {
      std::snprintf(buf, sizeof buf, "%s: /proc/interrupts rose by %lu in total, last on CPU %d "
                    "(before: %s; after: %s)", where, total, rose, Trim(before->line).c_str(),
                    Trim(after->line).c_str());
      fail = buf;
      break;
    }
    ++aimed[target];
    ++landed[rose];
    ++rounds;
  }
  if (fail.empty()) {
    // Nothing may arrive after the last acknowledgement.
    pollfd pfd{uio_fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) != 0) fail = "an extra interrupt arrived after the last round";
  }

  // Stop the spinners before printing: on a broken machine they may hold CPUs whose
  // interrupts (the serial port's included) are not being delivered.
  stop.store(true);
  for (std::thread& t : spinners) t.join();
  const double elapsed = Now() - t0;
  mmio.Write(kRegIrqAck, ~0u);
  cfg.EnableIntx();

  const auto row1 = ReadIrqRow(irq);
  const long uio_events1 = UioEvents(uio);
  std::string spun;
  for (size_t i = 0; i < spin_cpus.size(); ++i)
    spun += (spun.empty() ? "" : ",") + std::to_string(spin_cpus[i]) + ":" +
            std::to_string(spins[i].load());
  std::printf("irqcheck: %lu rounds in %.2f s, slowest arrival %.2f ms; the route lagged the "
              "target in %lu rounds, a late move put it on the target in %lu; %lu affinity write "
              "errors; spinner loops %s\n", rounds, elapsed, worst_ms, lagging, late_moves,
              affinity_errors, spun.empty() ? "-" : spun.c_str());
  if (row1) std::printf("irqcheck: /proc/interrupts: %s\n", Trim(row1->line).c_str());
  if (fail.empty()) {
    char buf[256];
    if (rounds == 0) fail = "no round completed";
    else if (uio_events1 - uio_events0 != long(rounds)) {
      std::snprintf(buf, sizeof buf, "uio counted %ld interrupts for %lu raised",
                    uio_events1 - uio_events0, rounds);
      fail = buf;
    } else if (!row1 || row1->Total() - row0->Total() != rounds) {
      std::snprintf(buf, sizeof buf, "/proc/interrupts counted %lu interrupts for %lu raised",
                    row1 ? row1->Total() - row0->Total() : 0, rounds);
      fail = buf;
    } else {
      for (const auto& [cpu, now] : row1->counts) {
        const unsigned long rose = now - row0->counts.at(cpu);
        if (rose != landed[cpu]) {
          std::snprintf(buf, sizeof buf, "CPU %d: /proc/interrupts rose by %lu, but %lu rounds "
                        "landed there", cpu, rose, landed[cpu]);
          fail = buf;
          break;
        }
        if (aimed.count(cpu) && rose == 0) {
          std::snprintf(buf, sizeof buf, "CPU %d was aimed at %lu times but its count in "
                        "/proc/interrupts never rose", cpu, aimed[cpu]);
          fail = buf;
          break;
        }
      }
    }
  }
  std::string per_cpu;
  for (int c : cpus)
    per_cpu += (per_cpu.empty() ? "" : ",") + std::to_string(c) + ":" + std::to_string(landed[c]);
  const std::string mode = apic.mode + "/" + apic.dest;
  if (!fail.empty()) {
    std::printf("IRQCHECK FAIL %s; n=%lu per-cpu=%s apic=%s\n", fail.c_str(), rounds,
                per_cpu.c_str(), mode.c_str());
    return 1;
  }
  std::printf("IRQCHECK PASS n=%lu per-cpu=%s apic=%s trigger=\"%s\" type=%s lagged=%lu "
              "max-ms=%.2f\n", rounds, per_cpu.c_str(), mode.c_str(), chip.c_str(), type.c_str(),
              lagging, worst_ms);
  return 0;
}

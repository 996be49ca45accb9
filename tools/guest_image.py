#!/usr/bin/env python3
"""Builds the mixedvm guest: a Debian kernel and a small initramfs.

    tools/guest_image.py --out DIR PROGRAM...

The initramfs holds busybox-static, tools/guest/init as /init, the given static
guest programs in /bin, and the kernel modules in GUEST_MODULES, taken from the
kernel's package, in /lib/modules. The kernel is the image that Debian's
linux-image-amd64 meta-package points at; it is downloaded with apt-get (not installed
on the host) and cached. DIR receives `vmlinuz` and `initrd.img`; both are rebuilt only when an input
(kernel package, busybox, /init, a program) changes.

The cpio archive is written here rather than by cpio(1) because it must contain a
/dev/console device node (the kernel opens it before running /init), and creating device
nodes on disk would need root and leave them behind.
"""
import argparse
import glob
import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUSYBOX = "/bin/busybox"
KERNEL_META = "linux-image-amd64"
# Modules of the kernel package that the guest needs, by path under
# lib/modules/<version>/kernel/; flat in the guest's /lib/modules, loaded by the
# program that uses them (uio_pci_generic: irqcheck, which drives QEMU's edu device).
GUEST_MODULES = ["drivers/uio/uio.ko", "drivers/uio/uio_pci_generic.ko"]


class ImageError(Exception):
    pass


def cache_dir():
    base = os.environ.get("MIXEDVM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mixedvm")
    path = os.path.join(base, "kernel")
    os.makedirs(path, exist_ok=True)
    return path


def kernel_package():
    """The versioned kernel package that linux-image-amd64's candidate depends on."""
    out = subprocess.run(["apt-cache", "depends", KERNEL_META], capture_output=True, text=True)
    m = re.search(r"Depends: (linux-image-[0-9][^\s]*-amd64)\b", out.stdout)
    if not m:
        raise ImageError(f"apt-cache does not know {KERNEL_META}; run tools/mixedvm setup "
                         "(apt-get update) first")
    return m.group(1)


def fetch_kernel_deb():
    pkg = kernel_package()
    cache = cache_dir()
    debs = sorted(glob.glob(os.path.join(cache, f"{pkg}_*.deb")))
    if debs:
        return debs[-1]
    out = subprocess.run(["apt-get", "download", "-q", pkg], cwd=cache, capture_output=True, text=True)
    debs = sorted(glob.glob(os.path.join(cache, f"{pkg}_*.deb")))
    if out.returncode != 0 or not debs:
        raise ImageError(f"could not download {pkg} (no network?): {out.stderr.strip()[-400:]}")
    return debs[-1]


def extract_kernel(deb, dest):
    """Copy boot/vmlinuz-* out of the .deb without installing it; return its name and
    the GUEST_MODULES' contents (name -> bytes)."""
    fsys = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, check=True).stdout
    version, modules = None, {}
    wanted = {m: os.path.basename(m) for m in GUEST_MODULES}
    with tarfile.open(fileobj=io.BytesIO(fsys)) as tar:
        for member in tar.getmembers():
            if re.fullmatch(r"\./boot/vmlinuz-.*", member.name):
                with tar.extractfile(member) as src, open(dest + ".tmp", "wb") as out:
                    shutil.copyfileobj(src, out)
                os.replace(dest + ".tmp", dest)
                version = os.path.basename(member.name)
            m = re.fullmatch(r"\./lib/modules/[^/]+/kernel/(.*)", member.name)
            if m and m.group(1) in wanted:
                with tar.extractfile(member) as src:
                    modules[wanted[m.group(1)]] = src.read()
    if not version:
        raise ImageError(f"{deb} contains no boot/vmlinuz-*")
    missing = [m for m in GUEST_MODULES if os.path.basename(m) not in modules]
    if missing:
        raise ImageError(f"{deb} lacks the modules {missing}")
    return version, modules


class Cpio:
    """A writer for the "newc" cpio format that the kernel's initramfs unpacker reads."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        name_b = name.encode() + b"\0"
        header = "070701" + "".join(f"{v:08X}" for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0))
        self.ino += 1
        self.buf.write(header.encode() + name_b)
        self.buf.write(b"\0" * (-(110 + len(name_b)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def directory(self, name):
        self._entry(name, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name, data, mode=0o755):
        self._entry(name, stat.S_IFREG | mode, data)

    def chardev(self, name, major, minor):
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def build_initrd(programs, modules):
    cpio = Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc", "root", "lib", "lib/modules"):
        cpio.directory(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    with open(os.path.join(HERE, "guest", "init"), "rb") as f:
        cpio.file("init", f.read())
    with open(BUSYBOX, "rb") as f:
        cpio.file("bin/busybox", f.read())
    for prog in programs:
        with open(prog, "rb") as f:
            cpio.file("bin/" + os.path.basename(prog), f.read())
    for name, data in sorted(modules.items()):
        cpio.file("lib/modules/" + name, data, mode=0o644)
    # mtime=0: the same inputs give the same bytes.
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


def inputs_digest(kernel_deb, programs):
    h = hashlib.sha256()
    h.update(os.path.basename(kernel_deb).encode())
    h.update(" ".join(GUEST_MODULES).encode())
    for path in [__file__, os.path.join(HERE, "guest", "init"), BUSYBOX] + list(programs):
        with open(path, "rb") as f:
            h.update(path.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def check_static(prog):
    out = subprocess.run(["file", "-L", prog], capture_output=True, text=True).stdout
    if out and "statically linked" not in out and "static-pie" not in out:
        raise ImageError(f"{prog} is not statically linked; the guest has no libc")


def build(out_dir, programs):
    """Build (or reuse) out_dir/vmlinuz and out_dir/initrd.img; return True if rebuilt."""
    if not os.path.exists(BUSYBOX):
        raise ImageError(f"{BUSYBOX} missing: install busybox-static (tools/mixedvm setup)")
    for prog in programs:
        if not os.path.exists(prog):
            raise ImageError(f"guest program {prog} is not built")
        if shutil.which("file"):
            check_static(prog)
    os.makedirs(out_dir, exist_ok=True)
    deb = fetch_kernel_deb()
    digest = inputs_digest(deb, programs)
    stamp = os.path.join(out_dir, "inputs.sha256")
    kernel = os.path.join(out_dir, "vmlinuz")
    initrd = os.path.join(out_dir, "initrd.img")
    if (os.path.exists(kernel) and os.path.exists(initrd) and os.path.exists(stamp)
            and open(stamp).read().strip() == digest):
        return False
    version, modules = extract_kernel(deb, kernel)
    with open(initrd + ".tmp", "wb") as f:
        f.write(build_initrd(programs, modules))
    os.replace(initrd + ".tmp", initrd)
    with open(os.path.join(out_dir, "kernel-version"), "w") as f:
        f.write(version + "\n")
    with open(stamp, "w") as f:
        f.write(digest + "\n")
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("programs", nargs="*", help="static guest programs to put in /bin")
    args = ap.parse_args()
    try:
        rebuilt = build(args.out, args.programs)
    except (ImageError, OSError, subprocess.CalledProcessError) as e:
        print(f"guest_image: error: {e}", file=sys.stderr)
        return 1
    print(f"guest image {'built' if rebuilt else 'up to date'}: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

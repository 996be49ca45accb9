/* Does KVM (PVM) use a stale translation after the guest PTE changes behind its back,
 * and which userspace action invalidates it? */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>
#include <time.h>
static int vm, vc; static struct kvm_run *run; static uint8_t *mem;
static uint64_t *pt;
static uint64_t go(void) {
  struct kvm_regs g={0}; g.rip=0x210000; g.rflags=0x202; g.rsp=0x3f0000; ioctl(vc,KVM_SET_REGS,&g);
  ioctl(vc,KVM_RUN,0); ioctl(vc,KVM_GET_REGS,&g);
  if (run->exit_reason!=8) printf("exit %d\n", run->exit_reason);
  return g.rax;
}
static void sregs_touch(int toggle) {
  struct kvm_sregs s; ioctl(vc,KVM_GET_SREGS,&s);
  if (toggle) { s.cr4 ^= 0x80; ioctl(vc,KVM_SET_SREGS,&s); s.cr4 ^= 0x80; }
  ioctl(vc,KVM_SET_SREGS,&s);
}
int main(int argc,char**argv){
 int kvm=open("/dev/kvm",O_RDWR); vm=ioctl(kvm,KVM_CREATE_VM,0);
 size_t msz=0x400000; mem=mmap(0,msz,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS,-1,0);
 struct kvm_userspace_memory_region r={.slot=0,.guest_phys_addr=0,.memory_size=msz,.userspace_addr=(uint64_t)mem};
 ioctl(vm,KVM_SET_USER_MEMORY_REGION,&r);
 uint64_t *pml4=(void*)(mem+0x2000),*pdpt=(void*)(mem+0x3000),*pd=(void*)(mem+0x4000); pt=(void*)(mem+0x5000);
 pml4[0]=0x3000|7; pdpt[0]=0x4000|7; pd[1]=0x5000|7;            /* 2MB..4MB through a 4K page table */
 for (int i=0;i<512;i++) pt[i]=(0x200000+i*0x1000)|7;           /* identity, user, writable */
 for (int i=0;i<16;i++) *(uint64_t*)(mem+0x300000+i*0x1000)=0xA000+i;
 uint8_t code[]={0x48,0x8b,0x04,0x25,0x00,0x00,0x30,0x00, 0x0F,0x05}; /* mov rax,[0x300000]; syscall */
 memcpy(mem+0x210000,code,sizeof code);
 vc=ioctl(vm,KVM_CREATE_VCPU,0); int sz=ioctl(kvm,KVM_GET_VCPU_MMAP_SIZE,0);
 run=mmap(0,sz,PROT_READ|PROT_WRITE,MAP_SHARED,vc,0);
 struct kvm_sregs s; ioctl(vc,KVM_GET_SREGS,&s);
 s.cr3=0x2000; s.cr4=0x20|0x80; s.cr0=0x80050033; s.efer=0x501; s.idt.base=0; s.idt.limit=0;
 struct kvm_segment seg={.base=0,.limit=0xffffffff,.selector=0x33,.present=1,.type=11,.dpl=3,.db=0,.s=1,.l=1,.g=1};
 s.cs=seg; seg.type=3; seg.selector=0x2b; seg.l=0; seg.db=1; s.ds=s.es=s.fs=s.gs=s.ss=seg;
 ioctl(vc,KVM_SET_SREGS,&s);
 struct { struct kvm_msrs h; struct kvm_msr_entry e[2]; } m={0};
 m.h.nmsrs=2; m.e[0].index=0xC0000082; m.e[0].data=0x1000; m.e[1].index=0xC0000081; m.e[1].data=((uint64_t)0x10<<32)|((uint64_t)0x20<<48);
 ioctl(vc,KVM_SET_MSRS,&m);
 printf("first read: %llx\n", (unsigned long long)go());
 const char *how[]={"nothing","set-sregs","toggle-pge","nr-mmu-pages","memslot-flags","dummy-slot"};
 void *dummy=mmap(0,4096,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS,-1,0);
 int order[]={0,5,0,5,5}; for (int k=0; k<5; k++) { int h=order[k];
   uint64_t target = 0x301000 + k*0x1000;              /* a page never mapped before */
   pt[0x100] = target|7;                                /* VA 0x300000 -> new page, host write */
   if (h==1) sregs_touch(0);
   if (h==2) sregs_touch(1);
   if (h==3) { int a=ioctl(vm,KVM_SET_NR_MMU_PAGES,64); int b=ioctl(vm,KVM_SET_NR_MMU_PAGES,4096); if(a||b) perror("nr"); }
   if (h==4) { r.flags=KVM_MEM_LOG_DIRTY_PAGES; ioctl(vm,KVM_SET_USER_MEMORY_REGION,&r); r.flags=0; ioctl(vm,KVM_SET_USER_MEMORY_REGION,&r); }
   if (h==5) { struct timespec a,b; clock_gettime(CLOCK_MONOTONIC,&a);
     struct kvm_userspace_memory_region d={.slot=9,.guest_phys_addr=0x7f00000000ull,.memory_size=4096,.userspace_addr=(uint64_t)dummy};
     if (ioctl(vm,KVM_SET_USER_MEMORY_REGION,&d)) perror("add"); d.memory_size=0; if (ioctl(vm,KVM_SET_USER_MEMORY_REGION,&d)) perror("del");
     clock_gettime(CLOCK_MONOTONIC,&b); printf("   dummy slot add+delete: %.1f us\n", ((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec))/1e3); }
   uint64_t v=go();
   uint64_t want=0xA000+((target-0x300000)>>12);
   printf("PTE retargeted, invalidation=%-14s read %llx want %llx: %s\n", how[h], (unsigned long long)v, (unsigned long long)want, v==want?"fresh":"STALE");
   if (v!=want) { /* leave it consistent for the next test: run until it sees it via nr-mmu zap */ ioctl(vm,KVM_SET_NR_MMU_PAGES,64); ioctl(vm,KVM_SET_NR_MMU_PAGES,4096); printf("   after nr-mmu zap: %llx\n",(unsigned long long)go()); }
 }
}

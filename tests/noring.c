/* Test-only launcher: runs a command with io_uring refused, as a container's
 * seccomp profile or kernel.io_uring_disabled refuses it.
 *
 *   mio_noring [-e ENOSYS] COMMAND [ARG...]
 *
 * A seccomp filter makes io_uring_setup fail with EPERM (or ENOSYS, as on a
 * kernel built without io_uring); every other system call goes through.
 * The filter holds for the command and everything it starts. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define ARCH AUDIT_ARCH_RISCV64
#else
#error "mio_noring: no audit architecture for this machine"
#endif

int main(int argc, char **argv)
{
    int err = EPERM, first = 1;

    if (argc > 2 && strcmp(argv[1], "-e") == 0) {
        if (strcmp(argv[2], "ENOSYS") == 0)
            err = ENOSYS;
        else if (strcmp(argv[2], "EPERM") != 0)
            first = argc;   /* unknown: usage */
        first += 2;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: %s [-e EPERM|ENOSYS] COMMAND [ARG...]\n", argv[0]);
        return 2;
    }
    {
        struct sock_filter code[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { (unsigned short)(sizeof code / sizeof code[0]), code };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
            perror("mio_noring: seccomp");
            return 2;
        }
    }
    execvp(argv[first], argv + first);
    perror("mio_noring: exec");
    return 127;
}

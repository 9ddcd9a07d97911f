/* Windows platform services (win.c), beneath the IOCP backend and the
 * Winsock networking: Winsock start-up and the translation of Winsock, Win32
 * and NTSTATUS errors into MIO_E* codes. */
#ifndef MIO_SYS_WIN_H
#define MIO_SYS_WIN_H

#include "../common.h"

/* Starts Winsock once per process, thread-safely; 0 or a MIO_E* code. */
int mio__wsa_init(void);

/* A Winsock or Win32 error code as a MIO_E* code. */
int mio__win_error(unsigned long code);
/* WSAGetLastError() as a MIO_E* code. */
int mio__wsa_err(void);
/* An NTSTATUS as a MIO_E* code. */
int mio__nt_error(LONG status);

/* An ntdll.dll entry point by name, or NULL: the native API is in no import
 * library that every toolchain ships. */
void *mio__ntdll_entry(const char *name);

#endif

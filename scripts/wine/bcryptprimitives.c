/* ProcessPrng, for wine versions whose bcryptprimitives.dll lacks it (wine 8,
 * Debian 12). Rust's standard library imports it for its random seeds; without
 * it no Rust program loads. Built by scripts/test-windows and found by wine
 * through WINEPATH. It fills the buffer from RtlGenRandom (SystemFunction036),
 * as the real one fills it from the system's generator. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}

/* A wine client that does nothing until it is killed. scripts/test-windows
 * keeps one running while the tests run, so that the wineserver is never
 * left without clients between two test binaries: a server that reaches its
 * idle exit just as the next binary connects leaves that binary with "wine
 * client error:0: recvmsg: Connection reset by peer", and it never starts. */
#include <windows.h>

int main(void)
{
    Sleep(INFINITE);
    return 0;
}

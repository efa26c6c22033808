# Sourced by the scripts that install things shared by every checkout of
# this user: Rust targets (rustup), Debian packages (apt-get) and the wine
# prefix. Two runs at once (two clones' CI on one machine) would otherwise
# install the same thing at the same time, and rustup ("detected conflict")
# and dpkg (its lock) refuse the second; two `wineboot --init` on one prefix
# race too.
#
#   with_setup_lock CMD [ARG...]   runs CMD (a command or a shell function)
#                                  holding the lock; the other run waits
#   add_rust_target TARGET         installs TARGET with rustup if missing,
#                                  under the lock
#
# The lock is a file in ${XDG_CACHE_HOME:-~/.cache} (flock(1), util-linux);
# where flock is missing, CMD runs without it.

with_setup_lock() {
    local dir="${XDG_CACHE_HOME:-$HOME/.cache}"
    if ! command -v flock >/dev/null; then
        "$@"
        return
    fi
    mkdir -p "$dir"
    (
        flock 9
        "$@"
    ) 9>"$dir/smmap-setup.lock"
}

add_rust_target() {
    rustup target list --installed | grep -qx "$1" && return
    with_setup_lock _add_rust_target_locked "$1"
}

# The check again, under the lock: the run that waited finds it installed.
_add_rust_target_locked() {
    rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

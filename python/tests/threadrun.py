"""Running a function in several threads at once, for the thread tests."""
import threading


def run_threads(target, threads):
    """Runs target(n) for n in range(threads), all released together by a
    barrier; re-raises (as an AssertionError listing them) what any raised."""
    errors = []
    barrier = threading.Barrier(threads)

    def wrapped(n):
        try:
            barrier.wait()
            target(n)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=wrapped, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors

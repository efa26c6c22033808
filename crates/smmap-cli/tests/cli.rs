//! Runs the `smmap` binary on small generated files and checks its output
//! against the known bytes and offsets, its error messages and exit status.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn smmap(args: &[&str]) -> Output {
    output(binary().args(args))
}

/// A command that runs the tool's binary, for [`output`] or [`spawn`].
fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smmap"))
}

/// How many times a command that did not start is tried.
const STARTS: u32 = 3;

/// Runs `command` to its end and returns what it printed and how it ended.
///
/// An error here is the test's own machinery failing (starting the process,
/// reading its pipes, waiting for it), never what the binary did: that is in
/// the `Output`. Under wine, where the Windows tests run, every process start
/// is a round trip to the wineserver, and now and then one fails there
/// before the binary runs at all: a CI run failed on one (the error was not
/// kept), and ten runs of this test binary under wine on a loaded machine
/// saw `ERROR_INTERNAL_ERROR` (1359) from `CreateProcess` once. So a command
/// that fails to run is tried again, up to `STARTS` times, each failure
/// written to stderr. The commands run here give the same result when run
/// again: they read their files, and `bench` makes its own afresh in the
/// directory it is given.
fn output(command: &mut Command) -> Output {
    retried(|| command.output())
}

/// Starts `command`, tried again as [`output`] is.
fn spawn(command: &mut Command) -> Child {
    retried(|| command.spawn())
}

fn retried<T>(mut run: impl FnMut() -> std::io::Result<T>) -> T {
    let mut tries = 1;
    loop {
        match run() {
            Ok(done) => return done,
            Err(e) if tries < STARTS => {
                eprintln!("the binary did not run (try {tries} of {STARTS}): {e:?}");
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("the binary did not run in {STARTS} tries: {e:?}"),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// Checks success and returns stdout.
fn ok(args: &[&str]) -> String {
    let out = smmap(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Checks exit status 2, empty stdout, one error line naming every piece of
/// `wanted`, and returns stderr. (An error of the argument parser's takes
/// more lines, of usage and help, but only one that says `error:`.)
fn fails(args: &[&str], wanted: &[&str]) -> String {
    fails_with(args, wanted, 1)
}

/// As [`fails`], with `errors` error lines.
fn fails_with(args: &[&str], wanted: &[&str], errors: usize) -> String {
    let out = smmap(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    let said = err.lines().filter(|l| l.contains("error:")).count();
    assert_eq!(said, errors, "{args:?}: {err}");
    for w in wanted {
        assert!(err.contains(w), "{args:?}: {err:?} lacks {w:?}");
    }
    err
}

/// The system's own words for a missing file (error 2, `ENOENT` on Unix,
/// `ERROR_FILE_NOT_FOUND` on Windows), as the tool prints them.
fn not_found() -> String {
    std::io::Error::from_raw_os_error(2).to_string()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// `len` bytes where byte `i` is `i % 251`.
fn counting(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The page size windows are aligned to, as `stat --json` reports it.
fn granularity(file: &str) -> u64 {
    let out = ok(&["stat", "--json", file]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["config"]["granularity"].as_u64().unwrap()
}

/// The harness's own retry: a run that fails to start is tried again and its
/// result returned, and one that never starts fails the test, saying why.
#[test]
fn a_command_that_does_not_start_is_tried_again() {
    let mut tries = 0;
    let got = retried(|| {
        tries += 1;
        if tries < STARTS {
            Err(std::io::Error::other("no start"))
        } else {
            Ok(tries)
        }
    });
    assert_eq!(got, STARTS);
    let never = std::panic::catch_unwind(|| {
        retried(|| -> std::io::Result<()> { Err(std::io::Error::other("no start")) })
    })
    .unwrap_err();
    let said = never.downcast_ref::<String>().unwrap();
    assert!(
        said.contains("did not run in 3 tries") && said.contains("no start"),
        "{said}"
    );
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in ["bench", "find", "dump", "read", "stat"] {
        let out = ok(&[sub, "--help"]);
        assert!(out.contains("Examples:"), "{sub}: {out}");
        assert!(out.contains(&format!("smmap {sub}")), "{sub}: {out}");
    }
    assert!(ok(&["--help"]).contains("Examples:"));
}

#[test]
fn dump_prints_hexdump_lines() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "hello.txt", b"Hello world, hello smmap\n");
    assert_eq!(
        ok(&["dump", &f]),
        "00000000  48 65 6c 6c 6f 20 77 6f  72 6c 64 2c 20 68 65 6c  |Hello world, hel|\n\
         00000010  6c 6f 20 73 6d 6d 61 70  0a                       |lo smmap.|\n\
         00000019\n"
    );
    assert_eq!(
        ok(&["dump", &f, "--offset", "6", "--length", "5"]),
        "00000006  77 6f 72 6c 64                                    |world|\n0000000b\n"
    );
    // A length past the end is clipped; sizes take units and hex.
    assert_eq!(
        ok(&["dump", &f, "--offset", "0x14", "--length", "1k"]),
        "00000014  6d 6d 61 70 0a                                    |mmap.|\n00000019\n"
    );
    let empty = write(dir.path(), "empty", b"");
    assert_eq!(ok(&["dump", &empty]), "");
}

#[test]
fn dump_across_windows() {
    let dir = tempfile::tempdir().unwrap();
    let data = counting(10_000);
    let f = write(dir.path(), "count.bin", &data);
    let out = ok(&[
        "dump", &f, "--offset", "4090", "--length", "20", "--window", "4096",
    ]);
    let hex = |r: std::ops::Range<usize>| {
        data[r]
            .iter()
            .map(|b| format!("{b:02x} "))
            .collect::<String>()
    };
    let ascii = |r: std::ops::Range<usize>| {
        data[r]
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect::<String>()
    };
    let expected = format!(
        "00000ffa  {} {} |{}|\n0000100a  {}{}|{}|\n0000100e\n",
        hex(4090..4098),
        hex(4098..4106),
        ascii(4090..4106),
        hex(4106..4110),
        " ".repeat(3 * 12 + 2),
        ascii(4106..4110)
    );
    assert_eq!(out, expected);
}

#[test]
fn dump_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "small", b"0123456789");
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    fails(&["dump", missing], &[missing, &not_found()]);
    fails(
        &["dump", dir.path().to_str().unwrap()],
        &[dir.path().to_str().unwrap(), "is a directory"],
    );
    fails(
        &["dump", &f, "--offset", "10"],
        &[&f, "offset 10", "past the end", "10 bytes"],
    );
    fails(&["dump", &f, "--offset", "1x"], &["invalid unit", "1x"]);
    fails(&["dump", &f, "--length", "-5"], &["-5"]);
}

#[test]
fn read_typed_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![0x01, 0x02, 0x03, 0x04, 0xff, 0xfe, 0x00, 0x00];
    bytes.extend_from_slice(&1.5f64.to_be_bytes());
    bytes.extend_from_slice(&(-2.25f32).to_le_bytes());
    let f = write(dir.path(), "values.bin", &bytes);
    assert_eq!(
        ok(&["read", &f, "--offset", "0", "--type", "u32be"]),
        "16909060\n"
    );
    assert_eq!(
        ok(&["read", &f, "--offset", "0", "--type", "u32le"]),
        "67305985\n"
    );
    assert_eq!(
        ok(&["read", &f, "--offset", "0", "--type", "u32"]),
        "67305985\n"
    );
    assert_eq!(
        ok(&["read", &f, "--offset", "4", "--type", "i16be"]),
        "-2\n"
    );
    assert_eq!(
        ok(&["read", &f, "--offset", "4", "--type", "u16LE"]),
        "65279\n"
    );
    assert_eq!(
        ok(&["read", &f, "--offset", "8", "--type", "f64be"]),
        "1.5\n"
    );
    assert_eq!(
        ok(&["read", &f, "--offset", "16", "--type", "f32le"]),
        "-2.25\n"
    );
    // A float far from 1 with an exponent, not hundreds of digits.
    let tiny = write(dir.path(), "tiny", &(-1.25e-196f64).to_le_bytes());
    assert_eq!(
        ok(&["read", &tiny, "--offset", "0", "--type", "f64le"]),
        "-1.25e-196\n"
    );
    assert_eq!(
        ok(&["read", &f, "-o", "0", "-t", "u8", "--count", "6"]),
        "1\n2\n3\n4\n255\n254\n"
    );
    assert_eq!(
        ok(&["read", &f, "-o", "4", "-t", "i8", "-k", "2"]),
        "-1\n-2\n"
    );
    assert_eq!(
        ok(&["read", &f, "-o", "0", "-t", "u16be", "-k", "3"]),
        "258\n772\n65534\n"
    );
}

#[test]
fn read_a_value_straddling_two_windows() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![0u8; 3 * 4096];
    data[4094..4098].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    data[8190..8198].copy_from_slice(&(-7i64).to_le_bytes());
    let f = write(dir.path(), "straddle.bin", &data);
    assert_eq!(
        ok(&["read", &f, "--offset", "4094", "--type", "u32be", "--window", "4096"]),
        "3735928559\n"
    );
    assert_eq!(
        ok(&["read", &f, "--offset", "8190", "--type", "i64le", "--window", "4096"]),
        "-7\n"
    );
}

#[test]
fn read_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "ten", b"0123456789");
    fails(
        &["read", &f, "--offset", "0", "--type", "u33"],
        &["unknown type", "u33"],
    );
    fails(
        &["read", &f, "--offset", "8", "--type", "u32be"],
        &[&f, "offset 8", "10 bytes"],
    );
    fails(
        &["read", &f, "--offset", "0", "--type", "u16", "--count", "6"],
        &[&f, "12 bytes", "10 bytes"],
    );
    fails(
        &["read", &f, "--offset", "100", "--type", "u8"],
        &[&f, "offset 100", "(1 byte)"],
    );
    // No values past the end either; none at the end is nothing to print.
    fails(
        &[
            "read", &f, "--offset", "100", "--type", "u8", "--count", "0",
        ],
        &[&f, "offset 100", "the file has 10 bytes"],
    );
    assert_eq!(
        ok(&["read", &f, "--offset", "10", "--type", "u8", "--count", "0"]),
        ""
    );
    fails(
        &[
            "read",
            &f,
            "--offset",
            "0",
            "--type",
            "u16",
            "--count",
            "0xffffffffffffffff",
        ],
        &[&f, "18446744073709551615 × u16le", "too many bytes"],
    );
    fails(
        &["read", &f, "--offset", "1.5k", "--type", "u8"],
        &["--offset", "\"1.5k\"", "fractions are not accepted"],
    );
    let one = write(dir.path(), "one", b"x");
    fails(
        &["read", &one, "--offset", "0", "--type", "u16"],
        &[&one, "(2 bytes)", "the file has 1 byte"],
    );
    fails(
        &["dump", &one, "--offset", "1"],
        &[&one, "offset 1", "(1 byte;"],
    );
    let missing = dir.path().join("nope");
    fails(
        &[
            "read",
            missing.to_str().unwrap(),
            "--offset",
            "0",
            "--type",
            "u8",
        ],
        &["nope", &not_found()],
    );
    fails(
        &[
            "read",
            dir.path().to_str().unwrap(),
            "--offset",
            "0",
            "--type",
            "u8",
        ],
        &["is a directory"],
    );
}

#[test]
fn find_offsets_text_and_hex() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "t.txt", b"abcabcab\x00\xffabc");
    assert_eq!(ok(&["find", "abc", &f]), format!("{f}:0\n{f}:3\n{f}:10\n"));
    assert_eq!(ok(&["find", "--hex", "00ff", &f]), format!("{f}:8\n"));
    assert_eq!(
        ok(&["find", "--hex", "0x62 63", &f]),
        format!("{f}:1\n{f}:4\n{f}:11\n")
    );
    // Overlapping matches are all reported.
    let a = write(dir.path(), "a.txt", b"aaaa");
    assert_eq!(ok(&["find", "aa", &a]), format!("{a}:0\n{a}:1\n{a}:2\n"));
    assert_eq!(
        ok(&["find", "--count", "abc", &f, &a]),
        format!("{f}:3\n{a}:0\n")
    );
    // A pattern that starts with a dash goes after `--`; options may come
    // before the pattern.
    let d = write(dir.path(), "d.txt", b"x--y");
    assert_eq!(ok(&["find", "--", "--y", &d]), format!("{d}:1\n"));
    assert_eq!(ok(&["find", "--", "-y", &d]), format!("{d}:2\n"));
    assert_eq!(
        ok(&["find", "-j1", "--count", "-", "--", &d]),
        format!("{d}:2\n")
    );
    assert_eq!(ok(&["find", "-j", "2", "-c", "y", &d]), format!("{d}:1\n"));
    let out = smmap(&["find", "-y", &d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-- -y"),
        "{out:?}"
    );
}

#[test]
fn find_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "j.bin", b"..xy..xy");
    let out = ok(&["find", "--json", "xy", &f]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["path"], f.as_str());
    assert_eq!(lines[0]["offset"], 2);
    assert_eq!(lines[1]["offset"], 6);
    let out = ok(&["find", "--json", "--count", "xy", &f]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["path"], f.as_str());
    assert_eq!(v["count"], 2);
}

#[test]
fn find_a_match_straddling_a_window_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![b'.'; 20_000];
    data[4093..4099].copy_from_slice(b"NEEDLE"); // crosses offset 4096
    data[8190..8194].copy_from_slice(b"NEED"); // a prefix only, across 8192
    data[19_994..20_000].copy_from_slice(b"NEEDLE"); // at the very end
    data[..6].copy_from_slice(b"NEEDLE"); // at the very start
    let f = write(dir.path(), "hay.bin", &data);
    let expected = format!("{f}:0\n{f}:4093\n{f}:19994\n");
    assert_eq!(ok(&["find", "NEEDLE", &f, "--window", "4096"]), expected);
    // With the tightest budgets: one window of one page alive at a time.
    assert_eq!(
        ok(&[
            "find",
            "NEEDLE",
            &f,
            "--window",
            "4096",
            "--max-handles",
            "1",
            "--max-memory",
            "4096"
        ]),
        expected
    );
    // The chunks find works in overlap too: matches across a chunk seam are
    // found once.
    assert_eq!(
        ok(&["find", "NEEDLE", &f, "--window", "0", "--chunk", "4096"]),
        expected
    );
    assert_eq!(ok(&["find", "NEEDLE", &f, "--chunk", "4093"]), expected);
    assert_eq!(ok(&["find", "NEEDLE", &f, "--chunk", "4094"]), expected);
}

/// Checks that `out` is one `file:offset` line per offset of `want`, in
/// order; a failure names the first difference only.
fn assert_offsets(out: &str, file: &str, want: &[u64], what: &str) {
    let got: Vec<u64> = out
        .lines()
        .map(|l| l.strip_prefix(file).unwrap()[1..].parse().unwrap())
        .collect();
    if got != want {
        let i = got.iter().zip(want).take_while(|(a, b)| a == b).count();
        panic!(
            "{what}: {} offsets, {} wanted; first difference at #{i}: {:?} vs {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

/// Every offset of `needle` in `hay`, overlapping ones included.
fn brute_force(hay: &[u8], needle: &[u8]) -> Vec<u64> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i as u64)
        .collect()
}

#[test]
fn find_in_ranges_sees_every_seam_position_once() {
    let dir = tempfile::tempdir().unwrap();
    let probe = write(dir.path(), "probe", b"x");
    let g = granularity(&probe) as usize;
    // Windows of one page; ranges of 3 pages and 5 bytes, so that range
    // seams fall between window seams.
    let range = 3 * g + 5;
    let size = 40 * g + 123;
    let needle = b"NEEDLE";
    let m = needle.len();
    let seams: Vec<usize> = (1..)
        .map(|k| k * g)
        .take_while(|&b| b < size)
        .chain((1..).map(|k| k * range).take_while(|&b| b < size))
        .collect();
    let rg = Command::new("rg").arg("--version").output().is_ok();
    // One file per position of the needle against the seams: ending just
    // before, straddling at every split, starting just after.
    for shift in 0..=m {
        let mut data = vec![b'.'; size];
        for &b in &seams {
            let Some(at) = b.checked_sub(shift) else {
                continue;
            };
            if at + m <= size && data[at..at + m].iter().all(|&c| c == b'.') {
                data[at..at + m].copy_from_slice(needle);
            }
        }
        let f = write(dir.path(), &format!("seams{shift}.bin"), &data);
        let want = brute_force(&data, needle);
        assert!(want.len() > seams.len() / 2, "shift {shift}");
        let (g_s, r_s) = (g.to_string(), range.to_string());
        for threads in ["1", "3"] {
            let base = [
                "find", "NEEDLE", &f, "--window", &g_s, "--chunk", &r_s, "-j", threads,
            ];
            let what = format!("shift {shift}, {threads} threads");
            assert_offsets(&ok(&base), &f, &want, &what);
            let count = ok(&[&base[..], &["--count"]].concat());
            assert_eq!(count, format!("{f}:{}\n", want.len()), "shift {shift}");
            // The tightest memory budget: one window's worth for all threads.
            let tight = ok(&[&base[..], &["--max-memory", &g_s]].concat());
            assert_offsets(&tight, &f, &want, &format!("{what}, one window"));
        }
        if rg {
            let out = Command::new("rg")
                .args(["--count-matches", "-a", "-F", "NEEDLE", &f])
                .output()
                .unwrap();
            assert_eq!(
                text(&out.stdout).trim(),
                want.len().to_string(),
                "rg, shift {shift}"
            );
        }
    }
}

#[test]
fn find_in_ranges_keeps_offset_order_with_many_matches() {
    let dir = tempfile::tempdir().unwrap();
    // Overlapping matches everywhere, ranges of 1,000 starts, 2 threads.
    let data: Vec<u8> = (0..50_000)
        .map(|i| if i % 7 == 3 { b'b' } else { b'a' })
        .collect();
    let f = write(dir.path(), "aa.bin", &data);
    let want = brute_force(&data, b"aa");
    let out = ok(&["find", "aa", &f, "--chunk", "1000", "-j", "2"]);
    assert_offsets(&out, &f, &want, "2 threads");
    assert_eq!(
        ok(&["find", "aa", &f, "--chunk", "1000", "-j", "2", "--count"]),
        format!("{f}:{}\n", want.len())
    );
    fails(&["find", "aa", &f, "-j", "0"], &["at least 1"]);
}

#[test]
fn find_walks_directories_with_r() {
    let dir = tempfile::tempdir().unwrap();
    let deeper = dir.path().join("sub").join("deeper");
    std::fs::create_dir_all(&deeper).unwrap();
    let b = write(dir.path(), "b.txt", b"xx key");
    let a = write(&dir.path().join("sub"), "a.txt", b"key");
    let c = write(&deeper, "c.txt", b"no");
    let root = dir.path().to_str().unwrap();
    let out = ok(&["find", "-r", "key", root]);
    assert_eq!(out, format!("{b}:3\n{a}:0\n"));
    let out = ok(&["find", "-r", "--count", "key", root]);
    assert_eq!(out, format!("{b}:1\n{a}:1\n{c}:0\n"));
    fails(&["find", "key", root], &[root, "is a directory", "-r"]);
}

#[test]
fn find_errors_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "f", b"hello");
    let out = smmap(&["find", "absent", &f]);
    assert_eq!(out.status.code(), Some(1), "no match is status 1");
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    fails(
        &["find", "--hex", "zz", &f],
        &["invalid hex pattern", "zz", "not a hex digit"],
    );
    fails(&["find", "--hex", "abc", &f], &["odd number of hex digits"]);
    fails(&["find", "", &f], &["pattern is empty"]);
    // A missing file among others: the others are searched, status 2.
    let missing = dir.path().join("gone");
    let out = smmap(&["find", "ell", missing.to_str().unwrap(), &f]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), format!("{f}:1\n"));
    assert!(text(&out.stderr).contains("gone"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&not_found()));
    // With --count, only the files searched have a count.
    let out = smmap(&["find", "--count", "ell", missing.to_str().unwrap(), &f]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), format!("{f}:1\n"));
    // Empty files and files shorter than the pattern have no matches.
    let empty = write(dir.path(), "empty", b"");
    assert_eq!(smmap(&["find", "x", &empty]).status.code(), Some(1));
}

#[test]
fn a_closed_pipe_ends_find_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "many", &vec![b'a'; 4 << 20]);
    let mut child = spawn(
        binary()
            .args(["find", "a", &f])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone now (as with `| head -1`).
    assert_eq!(first, format!("{f}:0\n"));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(text(&out.stderr), "");
}

/// The write end of a pipe whose reader has gone (as `head` has, once it
/// has read its lines), for a command's stdout: the stdin of a process that
/// has ended. Every write to it fails at once, whatever the timing.
fn closed_pipe() -> Stdio {
    let mut gone = spawn(
        binary()
            .arg("--version")
            .stdin(Stdio::piped())
            .stdout(Stdio::null()),
    );
    let end = gone.stdin.take().unwrap();
    assert!(gone.wait().unwrap().success());
    Stdio::from(end)
}

/// Runs `smmap args` with its stdout a closed pipe.
fn into_closed_pipe(args: &[&str]) -> Output {
    output(binary().args(args).stdout(closed_pipe()))
}

/// A JSON report larger than the output buffer meets the closed pipe
/// inside the JSON writer, whose error wraps the pipe's: still quiet.
#[test]
fn a_closed_pipe_ends_a_json_report_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "f", b"x");
    let mut args = vec!["stat", "--json"];
    // About 150 bytes of JSON each: well over the 8 KiB buffer.
    args.extend(std::iter::repeat_n(f.as_str(), 200));
    let out = into_closed_pipe(&args);
    assert_eq!(text(&out.stderr), "");
    assert!(out.status.success(), "{:?}", out.status);
}

/// A file that failed makes the status 2 even when the report then meets a
/// closed pipe (`smmap stat missing ok | true`).
#[test]
fn a_failed_file_is_status_2_whatever_became_of_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "f", b"x");
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let runs: [&[&str]; 6] = [
        &["stat", missing, &f],
        &["stat", missing, &f, "--json"],
        &["find", "x", missing, &f],
        &["find", "-c", "x", missing, &f],
        &["find", "--json", "x", missing, &f],
        &["find", "-j", "1", "x", &f, missing],
    ];
    for args in runs {
        let out = into_closed_pipe(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("missing") && err.contains(&not_found()),
            "{err}"
        );
    }
}

/// A path that is not UTF-8 is printed as its bytes, as `grep` prints it, so
/// that a script can open the file again; JSON shows U+FFFD for such bytes.
#[cfg(unix)]
#[test]
fn find_prints_a_path_that_is_not_utf8_as_its_bytes() {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let path = dir.path().join(name);
    std::fs::write(&path, b"hello").unwrap();
    let run = |args: &[&str]| {
        let out = output(binary().args(args).arg(&path));
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        out.stdout
    };
    let mut line = path.clone().into_os_string().into_vec();
    line.extend_from_slice(b":1\n");
    assert_eq!(run(&["find", "ell"]), line);
    assert!(run(&["find", "--count", "l"]).ends_with(b"\xe9:2\n"));
    let json: Value = serde_json::from_slice(&run(&["find", "--json", "ell"])).unwrap();
    assert_eq!(json["path"], path.to_string_lossy().as_ref());
    assert!(json["path"].as_str().unwrap().ends_with("caf\u{fffd}"));
}

#[test]
fn stat_counts_windows() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "ten_k", &counting(10_000));
    let g = granularity(&f);
    let out = ok(&["stat", "--json", "--window", "4096", &f]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let window = 4096u64.div_ceil(g) * g;
    let config = &v["config"];
    assert_eq!(config["window_size"], 4096);
    assert_eq!(config["max_memory_size"], 1u64 << 30);
    assert_eq!(config["max_open_handles"], 256);
    let file = &v["files"][0];
    assert_eq!(file["path"], f.as_str());
    assert_eq!(file["size"], 10_000);
    assert_eq!(file["windows"], 10_000u64.div_ceil(window));
    assert_eq!(file["mapped_bytes"], 10_000);
    assert_eq!(file["evictions"], 0);
    assert_eq!(file.as_object().unwrap().len(), 6);
    // One window of memory: every window but the last is evicted (and the
    // last too if the engine grew it past the limit: it may place a window
    // from where the evicted one began, up to a page larger than asked).
    let out = ok(&[
        "stat",
        "--json",
        "--window",
        "4096",
        "--max-memory",
        &window.to_string(),
        &f,
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let windows = 10_000u64.div_ceil(window);
    let scan = &v["files"][0];
    let evictions = scan["evictions"].as_u64().unwrap();
    let maps = scan["windows"].as_u64().unwrap();
    assert!(maps >= windows, "{scan}");
    assert!((maps - 1..=maps).contains(&evictions), "{scan}");
    let peak = scan["peak_mapped_bytes"].as_u64().unwrap();
    assert!(peak <= window + g, "{scan}");
    assert!(scan["mapped_bytes"].as_u64().unwrap() >= 10_000, "{scan}");
    // Whole-file mapping: one window.
    let out = ok(&["stat", "--window", "0", &f]);
    assert!(out.starts_with("window whole files,"), "{out}");
    let row = out.lines().find(|l| l.starts_with(&f)).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..4], ["10000", "9.77", "KiB"]);
    assert_eq!(cells[4], "1");
}

#[test]
fn stat_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "f", b"x");
    let missing = dir.path().join("missing");
    // The files that could be read are still reported.
    let out = smmap(&["stat", &f, missing.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("missing") && err.contains(&not_found()),
        "{err}"
    );
    let report = text(&out.stdout);
    assert!(
        report.contains(&f) && !report.contains("missing"),
        "{report}"
    );
    fails(&["stat", dir.path().to_str().unwrap()], &["is a directory"]);
    fails(&["stat", "--max-handles", "0", &f], &["at least 1"]);
    fails(&["stat", "--window", "lots", &f], &["lots"]);
}

/// The sorted keys of a JSON object.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// `names` with each of `suffixes` appended, sorted.
fn fields(names: &[&str], suffixes: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = names
        .iter()
        .flat_map(|n| suffixes.iter().map(move |s| format!("{n}{s}")))
        .collect();
    out.sort();
    out
}

/// Under a limit on open files that holds a descriptor per small file for
/// one method at a time, not for the baselines and the engine's two
/// managers at once, the bench gives the engine one per file all the same,
/// runs each method in turn, says so, and its checksums agree (the bench
/// fails if they do not). The limit is set in the child only, by the shell
/// that starts it.
#[cfg(unix)]
#[test]
fn bench_takes_turns_when_the_descriptors_do_not_all_fit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let bench = |extra: &[&str]| {
        let out = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 400 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_smmap"))
            .args([
                "bench", "--size", "1MiB", "--files", "100", "--ops", "10000",
            ])
            .args(["--repeat", "2", "--dir", root])
            .args(extra)
            .output()
            .expect("the shell runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    // 100 files need 3 × 100 + 256 descriptors for all at once: 556 > 400.
    let v: Value = serde_json::from_str(&bench(&["--json"])).expect("one JSON document");
    assert_eq!(v["checksums_verified"], true);
    assert_eq!(v["config"]["descriptors_in_turn"], true);
    assert_eq!(v["config"]["small_max_open_files"], 100);
    let small = workload(&v, "small_files_random_4k");
    for method in ["buffer", "cursor", "pread", "map_unmap"] {
        assert!(
            small[format!("{method}_ns")].as_f64().unwrap() > 0.0,
            "{method}: {small}"
        );
    }
    let table = bench(&[]);
    assert!(
        table.contains("small files: each method ran all its runs in turn"),
        "{table}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Under a limit too low for the baselines to open every small file at
/// once, the bench stops with an error that names a file and the way out,
/// and leaves no data behind.
#[cfg(unix)]
#[test]
fn bench_names_a_file_it_cannot_open_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 100 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_smmap"))
        .args(["bench", "--size", "1MiB", "--files", "200", "--dir", root])
        .output()
        .expect("the shell runs");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("cannot open "), "{err}");
    assert!(err.contains(root), "{err}");
    assert!(
        err.contains("raise `ulimit -n` or use fewer --files"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `--in-turn` asks for the same where the limit holds both.
#[test]
fn bench_in_turn_runs_each_method_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let mut args: Vec<&str> =
        "bench --size 1MiB --files 20 --ops 10000 --repeat 2 --in-turn --json --dir"
            .split(' ')
            .collect();
    args.push(root);
    let out = ok(&args);
    let v: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(v["checksums_verified"], true);
    assert_eq!(v["config"]["descriptors_in_turn"], true);
    assert_eq!(v["config"]["small_max_open_files"], 20);
}

#[test]
fn bench_json_has_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let out = ok(&[
        "bench",
        "--size",
        "8MiB",
        "--files",
        "50",
        "--max-handles",
        "8",
        "--json",
        "--dir",
        root,
    ]);
    // The data is gone afterwards.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let v: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(
        keys(&v),
        [
            "checksums_verified",
            "config",
            "goals",
            "scaling",
            "schema",
            "thread_scaling",
            "workloads"
        ]
    );
    assert_eq!(v["schema"], 1);
    assert_eq!(v["checksums_verified"], true);

    let c = &v["config"];
    assert_eq!(
        keys(c),
        [
            "data_dir",
            "descriptors_in_turn",
            "file_size",
            "granularity",
            "hot_files",
            "hot_files_bytes",
            "hot_reads_share",
            "max_memory_size",
            "read_size",
            "repeat",
            "seed",
            "skewed_max_handles",
            "skewed_max_memory_size",
            "small_files",
            "small_files_bytes",
            "small_max_handles",
            "small_max_memory_size",
            "small_max_open_files",
            "thread_counts",
            "threads",
            "window_size"
        ]
    );
    assert!(c["data_dir"].as_str().unwrap().starts_with(root));
    assert_eq!(c["file_size"], 8 << 20);
    assert_eq!(c["small_files"], 50);
    let small_bytes = c["small_files_bytes"].as_u64().unwrap();
    assert!(
        (50 * 4096..=50 * 65536).contains(&small_bytes),
        "{small_bytes}"
    );
    assert_eq!(c["read_size"], 4096);
    assert!(c["window_size"].as_u64().unwrap() >= 8 << 20);
    assert!(c["max_memory_size"].as_u64().unwrap() >= 8 << 20);
    assert_eq!(c["small_max_memory_size"], 64 << 20);
    assert_eq!(c["small_max_handles"], 8);
    assert_eq!(c["small_max_open_files"], 50);
    assert_eq!(c["descriptors_in_turn"], false);
    assert_eq!(c["threads"], 2);
    assert_eq!(c["thread_counts"], serde_json::json!([2]));
    assert_eq!(c["repeat"], 3);
    assert_eq!(c["seed"], 1);
    assert!(c["granularity"].as_u64().unwrap().is_power_of_two());
    // The skewed budget holds the hot files and not the whole set.
    assert_eq!(c["hot_files"], 10);
    assert_eq!(c["hot_reads_share"], 0.8);
    let hot_bytes = c["hot_files_bytes"].as_u64().unwrap();
    let skewed_memory = c["skewed_max_memory_size"].as_u64().unwrap();
    let skewed_handles = c["skewed_max_handles"].as_u64().unwrap();
    assert!(hot_bytes <= skewed_memory && skewed_memory < small_bytes);
    assert!((10..50).contains(&skewed_handles), "{skewed_handles}");

    let rows = v["workloads"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "sequential_scan",
            "random_1byte",
            "random_4k",
            "random_4k_threads",
            "switch_1byte",
            "switch_4k",
            "switch_4k_threads",
            "small_files_random_4k",
            "small_files_random_4k_threads",
            "small_files_skewed_4k"
        ]
    );
    let stat_keys = [
        "evictions",
        "fd_opens",
        "ghost_hits",
        "hit_ratio",
        "hits",
        "maps",
        "misses",
        "peak_mapped_bytes",
        "pread_bytes",
        "pread_windows",
        "preads",
        "waits",
    ];
    let common = [
        "bytes",
        "checksum",
        "label",
        "name",
        "ops",
        "threads",
        "window_size",
    ];
    for r in rows {
        let name = r["name"].as_str().unwrap();
        let small = name.starts_with("small_files");
        let all = [
            "buffer",
            "buffer_map",
            "cursor",
            "mmap",
            "pread",
            "map_unmap",
            "oracle",
        ];
        let (methods, engine): (&[&str], &[&str]) = if name == "small_files_skewed_4k" {
            (&all, &["buffer", "buffer_map", "cursor"])
        } else if small {
            (&all[..6], &["buffer", "buffer_map", "cursor"])
        } else {
            (
                &["buffer", "cursor", "mmap", "pread"],
                &["buffer", "cursor"],
            )
        };
        let mut want = fields(methods, &["_ns", "_ratio"]);
        want.extend(fields(engine, &["_stats"]));
        // The first run's hit ratio of each manager's first method (the
        // cursor shares the buffer's manager).
        let first_on_a_manager: Vec<&str> =
            engine.iter().copied().filter(|&m| m != "cursor").collect();
        want.extend(fields(&first_on_a_manager, &["_first_hit_ratio"]));
        want.extend(common.iter().map(|s| s.to_string()));
        if small {
            want.push("cursor_floor_ratio".into());
            // The budgeted rows carry Belady's hit ratio, computed offline.
            want.push("belady_hit_ratio".into());
            let belady = r["belady_hit_ratio"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&belady), "{name}: {belady}");
            // Of the uniform rows' budget only the 8 handles bind (the 50
            // files are each one window): MIN is the optimum, and no policy
            // does better from nothing mapped (always mapping, a buffer's
            // first window, mapped when it is made, is unmapped again
            // before the reads).
            if name.starts_with("small_files_random") {
                for m in &first_on_a_manager {
                    let first = r[format!("{m}_first_hit_ratio")].as_f64().unwrap();
                    assert!(
                        first <= belady + 1e-9,
                        "{name}: {m} {first} over MIN's {belady}"
                    );
                }
            }
        }
        if name == "small_files_skewed_4k" {
            // And the oracle's, its files mapped at their first reads.
            want.push("oracle_hit_ratio".into());
            let oracle = r["oracle_hit_ratio"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&oracle), "{name}: {oracle}");
        }
        want.sort();
        assert_eq!(keys(r), want, "{name}");
        assert!(!r["label"].as_str().unwrap().is_empty());
        let ops = r["ops"].as_u64().unwrap();
        let bytes = r["bytes"].as_u64().unwrap();
        assert!(ops > 0 && bytes > 0, "{name}");
        let mmap = r["mmap_ns"].as_u64().unwrap();
        assert!(mmap > 0);
        for m in methods {
            let ns = r[format!("{m}_ns")].as_u64().unwrap();
            assert!(ns > 0, "{name} {m}");
            let ratio = r[format!("{m}_ratio")].as_f64().unwrap();
            assert!(
                (ratio - ns as f64 / mmap as f64).abs() < 1e-6 * ratio.max(1.0),
                "{name} {m}"
            );
        }
        if small {
            let floor = r["cursor_floor_ratio"].as_f64().unwrap();
            let want = r["cursor_ns"].as_f64().unwrap() / r["map_unmap_ns"].as_f64().unwrap();
            assert!((floor - want).abs() < 1e-6 * want, "{name}");
        }
        let checksum = r["checksum"].as_str().unwrap();
        assert!(
            checksum.starts_with("0x") && checksum.len() == 18,
            "{checksum}"
        );
        assert!(u64::from_str_radix(&checksum[2..], 16).is_ok());
        for m in engine {
            let s = &r[format!("{m}_stats")];
            assert_eq!(keys(s), stat_keys, "{name} {m}");
            assert!(s["peak_mapped_bytes"].as_u64().unwrap() > 0, "{name} {m}");
            let hit = s["hit_ratio"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&hit), "{name} {m}: {hit}");
            if *m != "cursor" {
                let first = r[format!("{m}_first_hit_ratio")].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&first), "{name} {m}: {first}");
            }
            // Counters cover the timed reads of the best run only, which may
            // reuse windows mapped by an earlier run (so `maps` may be 0).
            assert!(s["maps"].is_u64(), "{name} {m}");
            // Only the buffer under the adaptive policy copies.
            if *m != "buffer" {
                assert_eq!(s["preads"], 0, "{name} {m}");
                assert_eq!(s["pread_bytes"], 0, "{name} {m}");
            }
            // Every cursor read is a hit or a miss (the buffer reads bytes
            // of its current window without asking the cursor, uncounted).
            let reads = s["hits"].as_u64().unwrap() + s["misses"].as_u64().unwrap();
            if *m == "cursor" {
                assert!(reads >= ops, "{name} {m}: {reads} < {ops}");
            }
            if small {
                assert!(s["peak_mapped_bytes"].as_u64().unwrap() <= 64 << 20);
                // Every read releases its window: each one asks the manager
                // (a miss) or takes its released window back (a hit).
                assert!(reads >= ops, "{name} {m}: {reads} < {ops}");
            }
        }
        // The window-switch rows read with 1 MiB windows, every one of which
        // the default limits hold: after the first run no window is mapped
        // or evicted, yet the reads go from window to window.
        let switch = name.starts_with("switch_");
        let window = if switch {
            1 << 20
        } else {
            c["window_size"].as_u64().unwrap()
        };
        assert_eq!(r["window_size"], window, "{name}");
        if switch {
            for m in engine {
                let s = &r[format!("{m}_stats")];
                assert_eq!(s["evictions"], 0, "{name} {m}");
                assert!(s["maps"].as_u64().unwrap() <= 8, "{name} {m}: {s}");
                assert!(
                    s["peak_mapped_bytes"].as_u64().unwrap() <= 8 << 20,
                    "{name} {m}"
                );
            }
        }
        let threads = r["threads"].as_u64().unwrap();
        match name {
            "sequential_scan" => {
                assert_eq!((ops, bytes, threads), (1, 8 << 20, 1));
                assert_eq!(r["buffer_stats"]["peak_mapped_bytes"], 8 << 20);
                assert_eq!(r["buffer_stats"]["evictions"], 0);
            }
            "random_1byte" | "switch_1byte" => assert_eq!((bytes, threads), (ops, 1)),
            "random_4k" | "switch_4k" | "small_files_random_4k" | "small_files_skewed_4k" => {
                assert_eq!((bytes, threads), (ops * 4096, 1))
            }
            _ => {
                assert!(name.ends_with("_threads"), "{name}");
                assert_eq!((bytes, threads), (ops * 4096, 2));
                let single = rows
                    .iter()
                    .find(|o| format!("{}_threads", o["name"].as_str().unwrap()) == name);
                assert_eq!(ops, 2 * single.unwrap()["ops"].as_u64().unwrap(), "{name}");
            }
        }
    }
    // The skewed row's budget is too small for every file: always-map
    // evicts, and the adaptive buffer copies instead of evicting.
    let skewed = rows.last().unwrap();
    assert!(skewed["buffer_map_stats"]["evictions"].as_u64().unwrap() > 0);
    assert!(skewed["buffer_stats"]["preads"].as_u64().unwrap() > 0);
    let scaling = &v["thread_scaling"];
    let bases = ["random_4k", "small_files_random_4k", "switch_4k"];
    assert_eq!(keys(scaling), bases);
    for row in ["random_4k", "switch_4k"] {
        assert_eq!(keys(&scaling[row]), ["buffer", "cursor", "mmap", "pread"]);
    }
    assert_eq!(
        keys(&scaling["small_files_random_4k"]),
        [
            "buffer",
            "buffer_map",
            "cursor",
            "map_unmap",
            "mmap",
            "pread"
        ]
    );
    for row in bases {
        for (m, gain) in scaling[row].as_object().unwrap() {
            assert!(gain.as_f64().unwrap() > 0.0, "{row} {m}");
        }
        // One thread count: the gains at every count are those at 2.
        assert_eq!(keys(&v["scaling"][row]), ["2"]);
        assert_eq!(v["scaling"][row]["2"], scaling[row], "{row}");
    }
    assert_eq!(keys(&v["scaling"]), bases);
    let goals = v["goals"].as_array().unwrap();
    let labels: Vec<&str> = goals.iter().map(|g| g["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "small files: buffer / pread",
            "small files: buffer throughput, 2 threads vs 1",
            "skewed small files: buffer / min(pread, raw mmap)",
            "skewed small files: buffer hit ratio, first run / Belady's MIN",
            "small files: cursor / map+unmap floor",
            "window switches, 1-byte reads: buffer / raw mmap",
            "large file, 1-byte reads: buffer / raw mmap",
            "window switches, 4 KiB reads, 2 threads: buffer / raw mmap",
            "window switches, 4 KiB reads, 2 threads: cursor / raw mmap",
            "large file, 4 KiB reads, 2 threads: buffer / raw mmap",
            "small files, 2 threads: buffer / pread",
            "small files, 2 threads vs 1: buffer scaling / pread scaling",
        ]
    );
    for g in goals {
        // The skewed goals carry the oracle's ratio: how far each can be met.
        let skewed = g["label"]
            .as_str()
            .unwrap()
            .starts_with("skewed small files: buffer");
        let mut want = vec!["at_least", "label", "met", "target", "value"];
        if skewed {
            want.insert(3, "oracle");
            assert!(g["oracle"].as_f64().unwrap() > 0.0, "{g}");
        }
        assert_eq!(keys(g), want);
        let (value, target) = (g["value"].as_f64().unwrap(), g["target"].as_f64().unwrap());
        let met = if g["at_least"] == true {
            value >= target
        } else {
            value <= target
        };
        assert_eq!(g["met"], met, "{g}");
    }
}

#[test]
fn bench_threads_takes_a_list_of_counts() {
    let out = ok(&[
        "bench",
        "--size",
        "2MiB",
        "--files",
        "20",
        "--max-handles",
        "8",
        "--repeat",
        "1",
        "--ops",
        "400",
        "--threads",
        "3,1,2",
        "--json",
        "--quiet",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["config"]["threads"], 3);
    assert_eq!(v["config"]["thread_counts"], serde_json::json!([1, 2, 3]));
    let rows = v["workloads"].as_array().unwrap();
    let bases = ["random_4k", "small_files_random_4k", "switch_4k"];
    for base in bases {
        // The one-thread row, then its twins at 2 and 3 threads, each
        // thread doing as many reads as the one thread.
        let at = rows.iter().position(|r| r["name"] == base).unwrap();
        let twin = format!("{base}_threads");
        let ops = rows[at]["ops"].as_u64().unwrap();
        for (k, threads) in [(0, 1), (1, 2), (2, 3)] {
            let r = &rows[at + k];
            let name = if k == 0 { base } else { twin.as_str() };
            assert_eq!(r["name"], name, "{r}");
            assert_eq!(r["threads"], threads, "{name}");
            assert_eq!(r["ops"].as_u64().unwrap(), threads * ops, "{name}");
        }
        assert_ne!(rows[at + 3]["name"], twin.as_str());
        let by = &v["scaling"][base];
        assert_eq!(keys(by), ["2", "3"], "{base}");
        assert_eq!(keys(&by["2"]), keys(&by["3"]), "{base}");
        // `thread_scaling` keeps the gains at the largest count.
        assert_eq!(v["thread_scaling"][base], by["3"], "{base}");
    }
    assert_eq!(keys(&v["scaling"]), bases);
    let labels: Vec<&str> = v["goals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"small files, 3 threads: buffer / pread"),
        "{labels:?}"
    );
    // Every threaded goal at the largest count, but the throughput goal,
    // set for 2 threads, which says so.
    assert!(
        labels.contains(&"small files: buffer throughput, 2 threads vs 1"),
        "{labels:?}"
    );
    assert_eq!(
        labels.iter().filter(|l| l.contains("2 threads")).count(),
        1,
        "{labels:?}"
    );
    // The table: a line per row and count.
    let out = ok(&[
        "bench",
        "--size",
        "2MiB",
        "--files",
        "0",
        "--repeat",
        "1",
        "--ops",
        "400",
        "--threads",
        "1,2,3",
        "--quiet",
    ]);
    for line in [
        "same, 3 threads, one manager",
        "random 4 KiB reads, 2 threads vs 1: throughput",
        "random 4 KiB reads, 3 threads vs 1: throughput",
        "window switches, 4 KiB reads (1 MiB windows), 3 threads vs 1: throughput",
        "switch_4k_threads (3)",
        "(1.00 MiB in the window-switch rows)",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
}

/// The row `name` of a bench's JSON document `v`.
fn workload<'v>(v: &'v Value, name: &str) -> &'v Value {
    v["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn bench_counts_the_oracles_hits_only_where_it_maps_what_min_sees() {
    // With windows smaller than some files, the oracle (whole files) and
    // MIN (windows) count different things: no oracle hit ratio, and the
    // goal against MIN has nothing beside it. The smallest window is the
    // allocation granularity: 4 KiB here, below the small files' 64 KiB at
    // most; 64 KiB on Windows, where the windows are whole files again.
    let out = ok(&[
        "bench", "--size", "1MiB", "--files", "20", "--repeat", "1", "--window", "4KiB", "--json",
        "--quiet",
    ]);
    let v: Value = serde_json::from_str(&out).expect("one JSON document");
    let skewed = workload(&v, "small_files_skewed_4k");
    let whole_files = skewed["window_size"].as_u64().unwrap() >= 64 * 1024;
    assert_eq!(whole_files, cfg!(windows), "{skewed}");
    assert!(skewed["belady_hit_ratio"].as_f64().is_some(), "{skewed}");
    assert_eq!(
        skewed.get("oracle_hit_ratio").is_some(),
        whole_files,
        "{skewed}"
    );
    let goal = v["goals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["label"] == "skewed small files: buffer hit ratio, first run / Belady's MIN")
        .expect("the goal against MIN");
    assert_eq!(goal.get("oracle").is_some(), whole_files, "{goal}");
}

#[test]
fn bench_table_names_every_method_and_goal() {
    let out = ok(&[
        "bench",
        "--size",
        "1MiB",
        "--files",
        "20",
        "--max-handles",
        "8",
        "--repeat",
        "1",
        "--quiet",
    ]);
    for heading in [
        "buffer",
        "buf(map)",
        "cursor",
        "raw mmap",
        "pread",
        "map+unmap",
        "oracle",
        "the oracle's is",
        "cur/floor",
        "small files, skewed 80/20",
        "the hot files fit",
        "admitted",
        "goals, this run:",
        "small files: cursor / map+unmap floor",
    ] {
        assert!(out.contains(heading), "{heading:?} missing from:\n{out}");
    }
    // Without small files: the large-file rows only, and no goals.
    let out = ok(&[
        "bench", "--size", "1MiB", "--files", "0", "--repeat", "1", "--quiet",
    ]);
    assert!(!out.contains("small files, 4 KiB"), "{out}");
    assert!(out.contains("random 4 KiB reads"), "{out}");
    // A large file of one 1 MiB window has no window to switch to: no
    // switch rows, and no goals measured on them.
    assert!(!out.contains("window switches"), "{out}");
    assert!(!out.contains("window-switch rows"), "{out}");
    // Small files that all fit the budget (64 handles): nothing evicted,
    // no goal of the budgeted rows, and a line that says why.
    let out = ok(&[
        "bench", "--size", "1MiB", "--files", "10", "--repeat", "1", "--quiet",
    ]);
    assert!(out.contains("small files, 4 KiB reads"), "{out}");
    assert!(!out.contains("small files: buffer / pread"), "{out}");
    assert!(
        out.contains("no goal for small files, 4 KiB reads")
            && out.contains("the files fit the budget (nothing was evicted)"),
        "{out}"
    );
}

#[test]
fn bench_sweep_prints_a_table_and_draws_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("sweep.svg");
    let out = ok(&[
        "bench",
        "--sweep",
        "--files",
        "40",
        "--ops",
        "400",
        "--repeat",
        "1",
        "--quiet",
        "--dir",
        dir.path().to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    for piece in ["adaptive", "always-map", "pread", "100%", "µs per read"] {
        assert!(out.contains(piece), "{piece:?} missing from:\n{out}");
    }
    // 2 patterns × 7 budgets.
    let rows = out
        .lines()
        .filter(|l| l.starts_with("uniform ") || l.starts_with("skewed "))
        .count();
    assert_eq!(rows, 14, "{out}");
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(
        drawn.starts_with("<svg") && drawn.contains("always-map"),
        "{drawn}"
    );
    // Only the chart is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let json = ok(&[
        "bench",
        "--sweep",
        "--json",
        "--files",
        "20",
        "--ops",
        "100",
        "--repeat",
        "1",
        "--quiet",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 14);
    for p in points {
        assert_eq!(
            keys(&p["ns_per_read"]),
            ["buffer", "buffer_map", "pread"],
            "{p}"
        );
    }
}

#[test]
fn bench_find_agrees_with_ripgrep() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&[
        "bench",
        "--find",
        "--size",
        "1MiB",
        "--quiet",
        "--json",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    // Three needles planted per MiB (random bytes add none, almost surely).
    assert_eq!(v["matches"], 3);
    let commands = v["commands"].as_array().unwrap();
    let rg = Command::new("rg").arg("--version").output().is_ok();
    let threads = v["threads"].as_u64().unwrap();
    let ours = if threads > 1 { 2 } else { 1 };
    assert_eq!(commands.len(), ours + usize::from(rg), "{v}");
    for c in commands {
        assert!(c["best_ns"].as_u64().unwrap() <= c["median_ns"].as_u64().unwrap());
        assert_eq!(c["vs_ripgrep"].is_f64(), rg, "{c}");
    }
    assert!(commands.iter().any(|c| c["command"]
        .as_str()
        .unwrap()
        .starts_with("smmap find --count -j 1")));
}

/// Ctrl-C (the terminal sends SIGINT to the process group) while `bench
/// --find` waits for a command it times: the command dies of it too, and
/// that is the interruption (status 130, the data removed), not a failure
/// of the command measured.
#[test]
#[cfg(target_os = "linux")]
fn ctrl_c_while_bench_find_times_a_command_interrupts_the_bench() {
    let dir = tempfile::tempdir().unwrap();
    let child = bench_find_timing_a_command(dir.path());
    let pid = child.id();
    // Signal the group, as a terminal would.
    // SAFETY: kill(2) on the group of the child just started.
    assert_eq!(unsafe { libc::kill(-(pid as i32), libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted; the benchmark data was removed"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A second Ctrl-C ends the bench at once, wherever it is (here waiting
/// for a command it times, which runs on), and removes the data first.
#[test]
#[cfg(target_os = "linux")]
fn a_second_ctrl_c_ends_the_bench_and_removes_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let child = bench_find_timing_a_command(dir.path());
    let pid = child.id();
    // Two in a row, to the bench alone: the second comes before the bench
    // sees the first (its command runs on).
    for _ in 0..2 {
        // SAFETY: kill(2) on the child just started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGINT) }, 0);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `smmap bench --find` with its data under `dir`, in a process group of
/// its own, once it runs a command it times (a process whose parent it
/// is).
#[cfg(target_os = "linux")]
fn bench_find_timing_a_command(dir: &std::path::Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};
    let mut command = binary();
    command
        .args([
            "bench", "--find", "--size", "4MiB", "--repeat", "1000", "--quiet", "--dir",
        ])
        .arg(dir)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = spawn(&mut command);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !has_child(child.id()) {
        assert!(Instant::now() < deadline, "bench --find ran no command");
        std::thread::sleep(Duration::from_millis(2));
    }
    child
}

/// True if some process's parent is `pid` (from `/proc/*/stat`).
#[cfg(target_os = "linux")]
fn has_child(pid: u32) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        std::fs::read_to_string(p.path().join("stat")).is_ok_and(|stat| {
            // The parent's pid is the second field after the name, which
            // ends with the last ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
    })
}

#[test]
fn bench_errors() {
    fails(&["bench", "--size", "1k"], &["--size", "at least 64KiB"]);
    fails(
        &["bench", "--max-handles", "1"],
        &["--max-handles 1", "--threads 2"],
    );
    fails(
        &["bench", "--threads", "0"],
        &["--threads", "'0'", "at least 1"],
    );
    fails(
        &["bench", "--threads", "1"],
        &["--threads", "no count of 2 or more in \"1\""],
    );
    fails(
        &["bench", "--threads", "2,x"],
        &["--threads", "\"x\" is not a thread count"],
    );
    fails(
        &["bench", "--threads", "2,70"],
        &["--max-handles 64", "--threads 70"],
    );
    fails(
        &["bench", "--threads", "70"],
        &["--max-handles 64", "--threads 70"],
    );
    let dir = tempfile::tempdir().unwrap();
    let nowhere: PathBuf = dir.path().join("no/such/dir");
    fails(
        &["bench", "--dir", nowhere.to_str().unwrap(), "--size", "64k"],
        &[nowhere.to_str().unwrap()],
    );
}

/// Counts past what a run can hold are refused before any data is
/// written, naming the option and its bound, rather than panicking,
/// aborting on allocation or starting more threads than can run.
#[test]
fn bench_bounds_name_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let bench = |extra: &[&str], wanted: &[&str]| {
        let mut args = vec!["bench", "--size", "64k", "--quiet", "--dir", d];
        if extra[0] != "--files" {
            args.extend(["--files", "0"]);
        }
        args.extend(extra);
        fails(&args, wanted);
    };
    for ops in ["0xffffffffffffffff", "1T", "268435457"] {
        bench(&["--ops", ops], &["--ops", "at most 268435456 reads"]);
    }
    for files in ["4000000000", "5000000000", "1048577"] {
        bench(
            &["--files", files],
            &["--files", "at most 1048576 small files"],
        );
    }
    for repeat in ["0xffffffffffffffff", "1001"] {
        bench(&["--repeat", repeat], &["--repeat", "at most 1000 runs"]);
    }
    bench(&["--repeat", "0"], &["--repeat", "at least 1 run"]);
    bench(&["--ops", "0"], &["--ops", "at least 1 read"]);
    bench(
        &["--max-open-files", "0"],
        &["--max-open-files", "at least 1"],
    );
    bench(
        &["--threads", "2,40000", "--max-handles", "40000"],
        &["--threads", "40000 threads", "at most 1024"],
    );
    // Each thread of a row holds its reads: a quarter of --ops each.
    bench(
        &[
            "--ops",
            "268435456",
            "--threads",
            "2,1024",
            "--max-handles",
            "1024",
        ],
        &[
            "--ops 268435456",
            "--threads 1024",
            "at most 268435456 reads",
        ],
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Only the small files' rows keep to --max-handles: with none, more
    // threads than it are no error.
    ok(&[
        "bench",
        "--size",
        "64k",
        "--files",
        "0",
        "--threads",
        "2,80",
        "--ops",
        "2000",
        "--repeat",
        "1",
        "--quiet",
        "--dir",
        d,
    ]);
}

/// A thread the system cannot start (here: none can, their stacks asked
/// to be larger than any address space) ends the bench with an error that
/// says so, leaving no data behind, rather than a panic or a hang.
#[cfg(target_os = "linux")]
#[test]
fn bench_says_when_a_thread_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(
        binary()
            .args(["bench", "--size", "64k", "--files", "0", "--ops", "100"])
            .args([
                "--repeat",
                "1",
                "--quiet",
                "--dir",
                dir.path().to_str().unwrap(),
            ])
            .env("RUST_MIN_STACK", (1u64 << 50).to_string()),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("threads") && err.contains("cannot start thread 1 of 2"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `find -j N` that cannot start a thread says so and exits 2; it neither
/// panics nor waits for ranges that will never be handed on.
#[test]
fn find_says_when_a_thread_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "f", &[b'x'; 4096]);
    let out = output(
        binary()
            .args(["find", "-c", "-j", "2", "--chunk", "100", "x", &f])
            .env("RUST_MIN_STACK", (1u64 << 50).to_string()),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("cannot start search thread 1 of 2"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

/// Each check applies where its option is used: a sweep writes no large
/// file and runs one thread, a replay reads no small files; a sweep
/// honours --max-open-files, as the rows do.
#[test]
fn bench_checks_only_the_options_a_mode_uses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let svg = dir.path().join("s.svg");
    let svg = svg.to_str().unwrap();
    let (trace, _) = record_trace(dir.path());
    let t = trace.to_str().unwrap();
    let unused = ["--size", "1k", "--max-handles", "1", "--threads", "2,8"];
    let sweep = |extra: &[&str]| -> Value {
        let mut args = vec!["bench", "--sweep", "--files", "20", "--ops", "50"];
        args.extend([
            "--repeat", "1", "--quiet", "--json", "--dir", d, "--svg", svg,
        ]);
        args.extend(unused);
        args.extend(extra);
        serde_json::from_str(&ok(&args)).expect("one JSON document")
    };
    assert_eq!(sweep(&[])["max_open_files"], 20);
    assert_eq!(sweep(&["--max-open-files", "12"])["max_open_files"], 12);
    let mut replay = vec!["bench", "--replay", t, "--sweep", "--files", "0"];
    replay.extend(["--repeat", "1", "--quiet", "--svg", svg]);
    replay.extend(unused);
    ok(&replay);
    // Where they are used, they are checked.
    fails(
        &["bench", "--sweep", "--files", "0", "--svg", svg],
        &["--sweep", "--files must be at least 1"],
    );
    fails(
        &["bench", "--find", "--size", "1k"],
        &["--size must be at least 64KiB"],
    );
    // Only the trace and the chart are left.
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "data0.bin",
            "data1.bin",
            "data2.bin",
            "reads.trace",
            "s.svg"
        ]
    );
}

/// Records a trace of buffer and cursor reads over three files in `dir`
/// (each read page by page, a few times); returns its path and the files'.
fn record_trace(dir: &std::path::Path) -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let files: Vec<_> = (0..3u64)
        .map(|i| {
            let p = dir.join(format!("data{i}.bin"));
            std::fs::write(&p, vec![i as u8 + 1; (i as usize + 2) * 65536]).unwrap();
            p
        })
        .collect();
    let trace = dir.join("reads.trace");
    let m = traced(&trace).build();
    let mut bufs: Vec<_> = files
        .iter()
        .map(|p| {
            smmap::SlidingWindowMapBuffer::new(m.make_cursor(p).unwrap(), 0, u64::MAX).unwrap()
        })
        .collect();
    let mut cursor = m.make_cursor(&files[0]).unwrap();
    for round in 0..4u64 {
        for (i, b) in bufs.iter_mut().enumerate() {
            for page in 0..(i as u64 + 2) * 16 {
                assert_eq!(b.get(page * 4096 + round).unwrap(), i as u8 + 1);
            }
        }
        cursor.use_region(round * 4096, 0).unwrap();
    }
    drop((bufs, cursor, m));
    (trace, files)
}

#[test]
fn bench_replay_runs_a_trace_under_limits_and_a_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let (trace, _) = record_trace(dir.path());
    let t = trace.to_str().unwrap();
    let out = ok(&[
        "bench",
        "--replay",
        t,
        "--window",
        "64KiB",
        "--max-memory",
        "128KiB",
        "--max-handles",
        "2",
        "--repeat",
        "1",
        "--quiet",
    ]);
    for piece in [
        "adaptive",
        "always-map",
        "pread",
        "raw mmap",
        "MIN",
        "working set: 9 windows",
    ] {
        assert!(out.contains(piece), "{piece:?} missing from:\n{out}");
    }
    // Files of the trace's sizes made for the run read the same way.
    let made = ok(&[
        "bench",
        "--replay",
        t,
        "--make-files",
        "--repeat",
        "1",
        "--quiet",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&made).unwrap();
    assert_eq!(
        (v["files"].as_u64(), v["reads"].as_u64()),
        (Some(3), Some(4 * (2 + 3 + 4) * 16 + 4))
    );
    let p = &v["points"][0];
    assert_eq!(
        keys(&p["methods"]),
        ["adaptive", "always_map", "mmap", "pread"]
    );
    assert!(p["belady_hit_ratio"].as_f64().unwrap() > 0.9, "{p}");
    // A sweep: a point per budget, and a chart.
    let svg = dir.path().join("replay.svg");
    let json = ok(&[
        "bench",
        "--replay",
        t,
        "--sweep",
        "--window",
        "64KiB",
        "--repeat",
        "1",
        "--quiet",
        "--json",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 8);
    for p in points {
        let (adaptive, min) = (
            p["methods"]["adaptive"]["hit_ratio"].as_f64().unwrap(),
            p["belady_hit_ratio"].as_f64().unwrap(),
        );
        assert!(
            (0.0..=1.0).contains(&adaptive) && (0.0..=1.0).contains(&min),
            "{p}"
        );
    }
    let full = points.last().unwrap();
    assert_eq!(full["share"], 1.0);
    assert_eq!(
        full["methods"]["adaptive"]["evictions"], 0,
        "the whole working set fits"
    );
    assert!(std::fs::read_to_string(&svg).unwrap().contains("Belady"));
}

/// The first point of `smmap bench --replay TRACE --window 64KiB
/// --repeat 1 --quiet --json` with `extra` arguments.
fn replay_point(trace: &std::path::Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "bench",
        "--replay",
        trace.to_str().unwrap(),
        "--window",
        "64KiB",
        "--repeat",
        "1",
        "--quiet",
        "--json",
    ];
    args.extend_from_slice(extra);
    let v: Value = serde_json::from_str(&ok(&args)).unwrap();
    v["points"][0].clone()
}

/// A manager of 64 KiB windows recording into a new trace at `trace`.
fn traced(trace: &std::path::Path) -> smmap::ManagerBuilder<smmap::SlidingWindowMapManager> {
    smmap::SlidingWindowMapManager::builder()
        .window_size(64 * 1024)
        .trace(smmap::Trace::create(trace).unwrap())
}

/// The engine's hit ratio and MIN's count the same accesses: a copy read
/// spanning four windows is four, a buffer's first map none. Read twice
/// with room for every window, half the accesses hit, on both sides.
#[test]
fn bench_replay_counts_hits_as_min_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.bin");
    std::fs::write(&data, vec![3u8; 8 * 65536]).unwrap();
    let trace = dir.path().join("spans.trace");
    {
        let m = smmap::SlidingWindowMapManager::builder()
            .window_size(64 * 1024)
            .read_policy(smmap::ReadPolicy::AlwaysMap)
            .trace(smmap::Trace::create(&trace).unwrap())
            .build();
        let mut b =
            smmap::SlidingWindowMapBuffer::new(m.make_cursor(&data).unwrap(), 0, u64::MAX).unwrap();
        let mut out = vec![0u8; 4 * 65536];
        for _ in 0..2 {
            b.read_exact_at(65536, &mut out).unwrap();
        }
    }
    let p = &replay_point(&trace, &[]);
    assert_eq!(p["belady_hit_ratio"].as_f64(), Some(0.5), "{p}");
    let adaptive = &p["methods"]["adaptive"];
    assert_eq!(
        (adaptive["hit_ratio"].as_f64(), adaptive["maps"].as_u64()),
        (Some(0.5), Some(4)),
        "{p}"
    );
    // Always-map also maps the buffer's first window, which no read asks
    // for: a miss more, 1 − 5/8.
    let always = &p["methods"]["always_map"];
    assert_eq!(
        (always["hit_ratio"].as_f64(), always["maps"].as_u64()),
        (Some(0.375), Some(5)),
        "{p}"
    );
    // With room for no window, every access misses, for MIN as for the
    // engine, which copies each read whole: one copy, four windows.
    let p = &replay_point(&trace, &["--max-handles", "1", "--max-memory", "4KiB"]);
    assert_eq!(p["belady_hit_ratio"].as_f64(), Some(0.0), "{p}");
    let adaptive = &p["methods"]["adaptive"];
    assert_eq!(
        (
            adaptive["hit_ratio"].as_f64(),
            adaptive["maps"].as_u64(),
            adaptive["preads"].as_u64()
        ),
        (Some(0.0), Some(0), Some(2)),
        "{p}"
    );
}

/// A read at or past the end of its file touches no window: it fails in
/// the replay as it did in the program, but is no miss, for the engine as
/// for MIN. A cursor that goes back and forth between two windows with one
/// mapping allowed lets each go as it moves: no read hits, for MIN either.
#[test]
fn bench_replay_counts_no_miss_past_the_end_and_none_held_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.bin");
    std::fs::write(&data, vec![7u8; 2 * 65536]).unwrap();
    let trace = dir.path().join("past.trace");
    {
        let m = traced(&trace).build();
        let mut c = m.make_cursor(&data).unwrap();
        for _ in 0..100 {
            assert_eq!(c.byte_at(5).unwrap(), 7);
        }
        for _ in 0..100 {
            assert!(c.byte_at(200_000).is_err());
        }
    }
    let p = &replay_point(&trace, &[]);
    assert_eq!(p["belady_hit_ratio"].as_f64(), Some(0.99), "{p}");
    for how in ["adaptive", "always_map"] {
        let m = &p["methods"][how];
        assert_eq!(m["failed_reads"].as_u64(), Some(100), "{how}: {m}");
        assert_eq!(m["hit_ratio"].as_f64(), Some(0.99), "{how}: {m}");
    }

    let trace = dir.path().join("moves.trace");
    {
        let m = traced(&trace).build();
        let mut c = m.make_cursor(&data).unwrap();
        for i in 0..50u64 {
            c.use_region((i % 2) * 65536, 0).unwrap();
        }
    }
    let p = &replay_point(&trace, &["--max-handles", "1"]);
    assert_eq!(p["belady_hit_ratio"].as_f64(), Some(0.0), "{p}");
    let m = &p["methods"]["always_map"];
    assert_eq!(
        (m["hit_ratio"].as_f64(), m["failed_reads"].as_u64()),
        (Some(0.0), Some(0)),
        "{m}"
    );
}

/// Copy reads of many windows each are as many accesses for MIN: a small
/// trace that would make more than the replay holds is refused, by name,
/// before any file is made. (Written by hand: 4,000 copies of 1 GiB, each
/// 262,144 accesses of 4 KiB windows — 16,384 where windows are at least
/// 64 KiB, Windows' granularity — in about 50 KiB of trace.)
#[test]
fn bench_replay_refuses_a_trace_of_too_many_window_accesses() {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("copies.trace");
    let mut t = b"SMMAPTR\x01".to_vec();
    let gib = 1u64 << 30;
    // The file (id 0, 1 GiB, named "big"), a cursor on it.
    t.push(1);
    for f in [0, gib, 3] {
        varint(&mut t, f);
    }
    t.extend_from_slice(b"big");
    t.extend_from_slice(&[2, 0, 0]);
    for i in 0..4000 {
        // A copy read (op 3, served by a copy: 3 << 3) of 1 GiB at offset
        // 0: a distance of -1 GiB from the end of the one before,
        // zigzag-coded.
        t.extend_from_slice(&[6, 0, 3 | 3 << 3]);
        varint(&mut t, if i == 0 { 0 } else { 2 * gib - 1 });
        varint(&mut t, gib);
    }
    t.push(8);
    std::fs::write(&trace, &t).unwrap();
    let made = dir.path().join("made");
    std::fs::create_dir(&made).unwrap();
    let tr = trace.to_str().unwrap();
    fails(
        &[
            "bench",
            "--replay",
            tr,
            "--window",
            "4KiB",
            "--make-files",
            "--dir",
            made.to_str().unwrap(),
            "--repeat",
            "1",
            "--quiet",
        ],
        &[tr, "window accesses", "--window"],
    );
    assert_eq!(std::fs::read_dir(&made).unwrap().count(), 0, "no file made");
}

#[test]
fn bench_replay_errors_name_the_trace_and_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (trace, files) = record_trace(dir.path());
    let t = trace.to_str().unwrap();
    // The files elsewhere: not found where the trace names them...
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    for f in &files {
        std::fs::rename(f, elsewhere.join(f.file_name().unwrap())).unwrap();
    }
    fails(
        &["bench", "--replay", t, "--quiet"],
        &["reads.trace", "data0.bin", "--dir"],
    );
    // ...and found by name under --dir.
    ok(&[
        "bench",
        "--replay",
        t,
        "--dir",
        elsewhere.to_str().unwrap(),
        "--repeat",
        "1",
        "--quiet",
    ]);
    // A directory, or (on Unix) a FIFO, where a file should be: refused by
    // name, never opened (a FIFO's open would wait for a writer).
    let data1 = elsewhere.join("data1.bin");
    let real = dir.path().join("data1.real");
    std::fs::rename(&data1, &real).unwrap();
    std::fs::create_dir(&data1).unwrap();
    let in_elsewhere = [
        "bench",
        "--replay",
        t,
        "--dir",
        elsewhere.to_str().unwrap(),
        "--quiet",
    ];
    fails(
        &in_elsewhere,
        &["reads.trace", "data1.bin", "is a directory"],
    );
    std::fs::remove_dir(&data1).unwrap();
    #[cfg(unix)]
    {
        let c = std::ffi::CString::new(data1.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        fails(&in_elsewhere, &["data1.bin", "not a regular file"]);
        std::fs::remove_file(&data1).unwrap();
    }
    std::fs::rename(&real, &data1).unwrap();
    // A file shorter than the trace read.
    std::fs::write(elsewhere.join("data2.bin"), b"short").unwrap();
    fails(
        &[
            "bench",
            "--replay",
            t,
            "--dir",
            elsewhere.to_str().unwrap(),
            "--quiet",
        ],
        &["data2.bin", "262144"],
    );
    // A truncated trace, a corrupt one, and no trace at all.
    let bytes = std::fs::read(&trace).unwrap();
    let cut = dir.path().join("cut.trace");
    std::fs::write(&cut, &bytes[..bytes.len() - 2]).unwrap();
    fails(
        &[
            "bench",
            "--replay",
            cut.to_str().unwrap(),
            "--make-files",
            "--quiet",
        ],
        &["cut.trace", "truncated", "record"],
    );
    let mut bad = bytes.clone();
    bad[8] = 0x7f; // the first record's type
    let corrupt = dir.path().join("bad.trace");
    std::fs::write(&corrupt, &bad).unwrap();
    fails(
        &[
            "bench",
            "--replay",
            corrupt.to_str().unwrap(),
            "--make-files",
            "--quiet",
        ],
        &["bad.trace", "unknown record type 127", "record 0"],
    );
    fails(
        &["bench", "--replay", "/no/such.trace", "--quiet"],
        &["/no/such.trace"],
    );
    fails(&["bench", "--make-files", "--quiet"], &["--replay"]);
    // A compressed trace that is not gzip inside.
    let mut gz = vec![0x1f, 0x8b];
    gz.extend_from_slice(b"not really gzip");
    let fake = dir.path().join("fake.trace.gz");
    std::fs::write(&fake, &gz).unwrap();
    fails(
        &[
            "bench",
            "--replay",
            fake.to_str().unwrap(),
            "--make-files",
            "--quiet",
        ],
        &["fake.trace.gz", "cannot decompress", "gzip"],
    );
}

/// A trace of two cursors on two files that each hold a window at once, as
/// a program's cursors may.
fn record_two_holders(dir: &std::path::Path) -> std::path::PathBuf {
    let files: Vec<_> = (0..2u64)
        .map(|i| {
            let p = dir.join(format!("held{i}.bin"));
            std::fs::write(&p, vec![i as u8 + 1; 4 * 65536]).unwrap();
            p
        })
        .collect();
    let trace = dir.join("holders.trace");
    let m = traced(&trace).build();
    let mut a = m.make_cursor(&files[0]).unwrap();
    let mut b = m.make_cursor(&files[1]).unwrap();
    for round in 0..4u64 {
        a.use_region(round * 65536, 0).unwrap();
        b.use_region(round * 65536, 0).unwrap();
        assert_eq!((a.buffer()[0], b.buffer()[0]), (1, 2));
    }
    drop((a, b, m));
    trace
}

/// Reads the program's own cursors cannot do under the limits given (two
/// cursors each holding a window, one mapping allowed) fail, are counted
/// as misses and are reported with the first error; the replay goes on.
#[test]
fn bench_replay_reports_the_reads_that_fail() {
    let dir = tempfile::tempdir().unwrap();
    let trace = record_two_holders(dir.path());
    let out = ok(&[
        "bench",
        "--replay",
        trace.to_str().unwrap(),
        "--window",
        "64KiB",
        "--max-handles",
        "1",
        "--repeat",
        "1",
        "--quiet",
    ]);
    assert!(
        out.contains("of the reads failed, counted as misses; the first:"),
        "{out}"
    );
    let json = ok(&[
        "bench",
        "--replay",
        trace.to_str().unwrap(),
        "--window",
        "64KiB",
        "--max-handles",
        "1",
        "--repeat",
        "1",
        "--quiet",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let a = &v["points"][0]["methods"]["adaptive"];
    assert!(a["failed_reads"].as_u64().unwrap() > 0, "{a}");
    assert!(
        a["first_error"]
            .as_str()
            .unwrap()
            .contains("max_open_handles"),
        "{a}"
    );
}

/// The real traces kept in the repository (traces/README.md: gitdb and
/// GitPython reading a public repository's pack, gzip-compressed) replay
/// on files of their sizes: every read served, none failing.
#[test]
fn bench_replay_runs_the_recorded_real_traces() {
    let traces = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../traces");
    for (name, reads) in [
        ("gitdb-pack.trace.gz", 190_672),
        ("gitpython-walk.trace.gz", 105_003),
    ] {
        let t = traces.join(name);
        let json = ok(&[
            "bench",
            "--replay",
            t.to_str().unwrap(),
            "--make-files",
            "--window",
            "1MiB",
            "--max-memory",
            "16MiB",
            "--max-handles",
            "16",
            "--repeat",
            "1",
            "--quiet",
            "--json",
        ]);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["reads"].as_u64(), Some(reads), "{name}");
        assert_eq!(v["files"].as_u64(), Some(2), "{name}");
        let p = &v["points"][0];
        for m in ["adaptive", "always_map"] {
            let r = &p["methods"][m];
            assert_eq!(r["failed_reads"], 0, "{name} {m}: {r}");
            let hit = r["hit_ratio"].as_f64().unwrap();
            assert!(hit > 0.5 && hit < 1.0, "{name} {m}: {r}");
        }
        let min = p["belady_hit_ratio"].as_f64().unwrap();
        assert!(min > 0.5 && min <= 1.0, "{name}: {p}");
    }
}

/// Windows below a page, or of 0 (whole files), are what the engine makes
/// of them (a page; whole files) in the rows, the sweep and the replay:
/// none hangs or panics.
#[test]
fn bench_takes_any_window() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for window in ["1", "4000", "0"] {
        let out = ok(&[
            "bench", "--size", "256KiB", "--files", "3", "--ops", "200", "--repeat", "1",
            "--quiet", "--dir", d, "--window", window,
        ]);
        assert!(out.contains("small files, 4 KiB reads"), "{window}: {out}");
    }
    let svg = dir.path().join("w.svg");
    ok(&[
        "bench",
        "--sweep",
        "--files",
        "5",
        "--ops",
        "100",
        "--repeat",
        "1",
        "--quiet",
        "--dir",
        d,
        "--window",
        "0",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let (trace, _) = record_trace(dir.path());
    let out = ok(&[
        "bench",
        "--replay",
        trace.to_str().unwrap(),
        "--window",
        "0",
        "--repeat",
        "1",
        "--quiet",
    ]);
    assert!(out.contains("MIN"), "{out}");
}

/// A chart path in no directory, or that names a directory, is refused
/// before the run; one that cannot be written (a full device) fails after
/// the figures are printed.
#[test]
fn bench_sweep_prints_its_figures_before_a_chart_it_cannot_draw() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let nowhere = dir.path().join("no/such/dir/x.svg");
    let nowhere = nowhere.to_str().unwrap();
    let sweep = |svg: &str| -> Vec<String> {
        [
            "bench", "--sweep", "--files", "5", "--ops", "100", "--repeat", "1", "--quiet",
            "--dir", d, "--svg", svg,
        ]
        .map(String::from)
        .to_vec()
    };
    let args = sweep(nowhere);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(&args, &["cannot draw", nowhere, "is not a directory"]);
    let args = sweep(d);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(&args, &["cannot draw", d, "it is a directory"]);
    let out = smmap(&args);
    assert!(out.stdout.is_empty(), "refused before the run");
    if !Path::new("/dev/full").exists() {
        return; // Not Linux: no device that refuses every write.
    }
    let args = sweep("/dev/full");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = smmap(&args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot draw") && stderr.contains("/dev/full"),
        "{stderr}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("uniform ")),
        "{stdout}"
    );
    assert!(!stdout.contains("chart drawn"), "{stdout}");
}

/// The chart of a sweep (of the small files, and of a replay) is drawn
/// even when stdout has closed before the table could be printed.
#[test]
fn bench_sweep_draws_its_chart_when_stdout_has_closed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (trace, _) = record_trace(dir.path());
    let t = trace.to_str().unwrap();
    for (name, replay) in [("sweep.svg", false), ("replay.svg", true)] {
        let svg = dir.path().join(name);
        let svg = svg.to_str().unwrap();
        let mut args = vec!["bench", "--sweep", "--repeat", "1", "--quiet", "--svg", svg];
        if replay {
            args.extend(["--replay", t]);
        } else {
            args.extend(["--files", "5", "--ops", "100", "--dir", d]);
        }
        let out = into_closed_pipe(&args);
        assert_eq!(text(&out.stderr), "", "{args:?}");
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        let drawn = std::fs::read_to_string(svg).unwrap_or_default();
        assert!(drawn.starts_with("<svg"), "{args:?}: no chart");
    }
}

/// Each random-read row is in ns per read however few reads it has (the
/// scan alone in GiB/s), and one small file is said to be all hot.
#[test]
fn bench_units_and_words_hold_for_tiny_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&[
        "bench",
        "--size",
        "64KiB",
        "--files",
        "1",
        "--ops",
        "1",
        "--repeat",
        "1",
        "--quiet",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from:\n{out}"))
            .to_string()
    };
    assert!(row("sequential scan").contains("GiB/s"), "{out}");
    for name in [
        "random 1-byte reads",
        "random 4 KiB reads",
        "small files, 4 KiB reads",
    ] {
        assert!(row(name).contains("ns/op"), "{name}: {out}");
    }
    assert!(out.contains("the one small file is hot"), "{out}");
    assert!(!out.contains("do not"), "{out}");
}

/// A skewed row over a few files names its one hot file in the singular.
#[test]
fn bench_names_one_hot_file_in_the_singular() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&[
        "bench",
        "--size",
        "64KiB",
        "--files",
        "3",
        "--ops",
        "1",
        "--repeat",
        "1",
        "--quiet",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        out.contains("go to 1 hot file (") && out.contains("the hot file fits, all 3"),
        "{out}"
    );
    assert!(!out.contains("1 hot files"), "{out}");
}

/// A replay reports the limits the engine took (0 bytes: its default), and
/// refuses 0 handles as every command does.
#[test]
fn bench_replay_reports_the_limits_in_effect() {
    let dir = tempfile::tempdir().unwrap();
    let (trace, _) = record_trace(dir.path());
    let t = trace.to_str().unwrap();
    let json = ok(&[
        "bench",
        "--replay",
        t,
        "--max-memory",
        "0",
        "--repeat",
        "1",
        "--quiet",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["points"][0]["max_memory_size"].as_u64(),
        Some(smmap::default_max_memory_size())
    );
    fails(
        &["bench", "--replay", t, "--max-handles", "0"],
        &["--max-handles", "at least 1"],
    );
}

/// An empty file has no last offset to name.
#[test]
fn dump_past_the_end_of_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty", b"");
    fails(
        &["dump", &empty, "--offset", "1"],
        &["offset 1", &empty, "an empty file"],
    );
}

/// A file the kernel makes as it is read says 0 bytes and reads more: no
/// mapping shows it, so it is refused by name rather than read as empty.
#[cfg(target_os = "linux")]
#[test]
fn files_the_kernel_makes_as_they_are_read_are_refused() {
    let f = "/proc/version";
    for args in [vec!["dump", f], vec!["stat", f], vec!["find", "Linux", f]] {
        fails(&args, &[f, "cannot be memory-mapped"]);
    }
    // Met in a directory searched with -r, too: refused, not "no match",
    // one error line per file of it.
    let d = "/proc/sys/kernel/random";
    let files = std::fs::read_dir(d)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_file())
        .count();
    fails_with(
        &["find", "-r", "-c", "x", d],
        &["/proc/sys/kernel/random/uuid", "cannot be memory-mapped"],
        files,
    );
}

/// A failed write to stdout (a full device, not a closed pipe) ends
/// `find` at once with one message, not one per file searched after.
#[cfg(target_os = "linux")]
#[test]
fn find_stops_at_the_first_failed_write() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 1 << 20];
    let a = write(dir.path(), "a", &zeros);
    let b = write(dir.path(), "b", &zeros);
    // One match each: 2,000 count lines are more than the output buffer
    // holds, so the count pass fails at a line in the middle of the run, not
    // only at the final flush.
    let one = write(dir.path(), "one", &[0]);
    for count in [false, true] {
        let mut args = vec!["find", "--hex", "00"];
        if count {
            args.push("-c");
            args.extend(std::iter::repeat_n(one.as_str(), 2000));
        } else {
            args.extend([a.as_str(), b.as_str(), a.as_str()]);
        }
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = output(binary().args(&args).stdout(full));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "count {count}: {err}");
        assert!(err.contains("cannot write to stdout"), "{err}");
    }
}

/// A device is refused by name, as a directory is.
#[cfg(target_os = "linux")]
#[test]
fn dump_refuses_a_device() {
    fails(
        &["dump", "/dev/null"],
        &["/dev/null", "is not a regular file"],
    );
}

/// A failed write to stdout (a full device) is said once, with status 2,
/// by dump and by stat (its table and its JSON, and beside a file that
/// failed, each said).
#[cfg(target_os = "linux")]
#[test]
fn dump_and_stat_say_a_failed_write() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "f", &counting(1 << 16));
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let mut json = vec!["stat", "--json"];
    // Past the 8 KiB output buffer: the write fails inside the JSON writer.
    json.extend(std::iter::repeat_n(f.as_str(), 200));
    for (args, lines) in [
        (vec!["dump", &f], 1),
        (vec!["stat", &f], 1),
        (json, 1),
        (vec!["stat", missing, &f], 2),
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = output(binary().args(&args).stdout(full));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{:?}: {err}", &args[..2]);
        assert_eq!(err.lines().count(), lines, "{err}");
        assert!(err.contains("cannot write to stdout"), "{err}");
        assert!(err.contains(&std::io::Error::from_raw_os_error(28).to_string()));
    }
}

/// A trace naming more files than the open-file limit lets the replay keep
/// open is refused up front, saying so, before any file is made.
#[cfg(unix)]
#[test]
fn bench_replay_refuses_more_files_than_it_can_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = b"SMMAPTR\x01".to_vec();
    for id in 0..300u16 {
        // A file record: tag, id, size 4096, a 1-byte name.
        t.push(1);
        t.extend_from_slice(&[(id as u8) | 0x80, (id >> 7) as u8]);
        t.extend_from_slice(&[0x80, 0x20, 1, b'f']);
    }
    t.push(8);
    let trace = dir.path().join("many.trace");
    std::fs::write(&trace, &t).unwrap();
    let made = dir.path().join("made");
    std::fs::create_dir(&made).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 100 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_smmap"))
        .args(["bench", "--replay", trace.to_str().unwrap(), "--make-files"])
        .args(["--dir", made.to_str().unwrap(), "--quiet"])
        .output()
        .expect("the shell runs");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for piece in ["many.trace", "names 300 files", "ulimit -n"] {
        assert!(err.contains(piece), "{piece:?} missing from {err}");
    }
    assert_eq!(std::fs::read_dir(&made).unwrap().count(), 0, "nothing made");
}

//! `smmap bench --sweep`: a picture of the budget. Random 4 KiB reads
//! across the small files — uniform, and 80 % of them on 20 % of the files
//! — under budgets from 1 % to all of the files' mappings and bytes, read by
//! the buffer under the adaptive policy, under always-map, and by `pread`;
//! printed as a table and a character chart, and drawn as an SVG chart.

use std::io::Write;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use super::data::{self, Rng};
use super::methods::MethodId;
use super::workloads::{self, Budget, Files, Pattern, Workload, HOT_FILES, HOT_READS, READ};
use super::{BenchArgs, Notes, SWEPT};

/// The budgets, as a share of the files' mappings and bytes.
const SHARES: [f64; 7] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

/// Reads per run at each point, unless `--ops` says otherwise.
const OPS: usize = 20_000;

/// One point of the sweep (JSON with `--json`: `{schema: 1, files,
/// files_bytes, max_open_files, reads_per_run, repeat, points:
/// [SweepPoint…]}`).
#[derive(Serialize, Debug, Clone)]
struct SweepPoint {
    /// `uniform` or `skewed`.
    pattern: &'static str,
    /// The budget as a share of the files' mappings and bytes.
    share: f64,
    /// Mappings allowed.
    max_handles: usize,
    /// Bytes allowed.
    max_memory_size: u64,
    /// Best time per read, nanoseconds, by method key (`buffer`,
    /// `buffer_map`, `pread`).
    ns_per_read: std::collections::BTreeMap<&'static str, f64>,
    /// The adaptive buffer's share of the windows its reads touch that were
    /// mapped already (as MIN counts them), and of its reads copied, in its
    /// first run (from nothing mapped, as MIN).
    buffer_hit_ratio: f64,
    /// See `buffer_hit_ratio`.
    buffer_pread_ratio: f64,
    /// The hit ratio of Belady's MIN with bypass over the same reads under
    /// the same budget, offline.
    belady_hit_ratio: f64,
}

/// The whole sweep.
#[derive(Serialize, Debug)]
struct Sweep {
    schema: u32,
    files: usize,
    files_bytes: u64,
    /// Descriptors the engine keeps open (`--max-open-files`, by default
    /// one per file where the limit on open files allows), as it took them.
    max_open_files: usize,
    reads_per_run: usize,
    repeat: usize,
    points: Vec<SweepPoint>,
}

/// Runs the sweep.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let ops = args.ops.unwrap_or(OPS).max(1);
    let patterns = [
        ("uniform", Pattern::Uniform { len: READ }),
        (
            "skewed",
            Pattern::Skewed {
                len: READ,
                hot_files: HOT_FILES,
                hot_reads: HOT_READS,
            },
        ),
    ];
    let steps = (patterns.len() * SHARES.len() * SWEPT.len() * args.repeat) as u64;
    let mut notes = Notes::new(args.quiet, 1 + steps);
    // A descriptor per file for the engine and for the baselines, at once
    // or in turn (as in the bench's rows).
    let limit = data::raise_open_file_limit(data::files_for_all_sets(args.files));
    let plan = data::descriptor_plan(limit, args.files);
    let max_open_files = args.max_open_files.unwrap_or(plan.engine).max(1);
    let data = super::setup(args, &notes, false, plan.baselines_keep && !args.in_turn)?;
    notes.progress.inc(1);
    let set = &data.small;
    let n = set.sizes.len();
    let page = *smmap::ALLOCATIONGRANULARITY;
    let charged: u64 = set.sizes.iter().map(|s| s.div_ceil(page) * page).sum();
    let window = super::window_of(args);
    let mut rng = Rng::new(args.seed ^ 0x5eed);
    let mut points = Vec::new();
    let mut engine_open_files = max_open_files;
    for (name, pattern) in patterns {
        for share in SHARES {
            let budget = Budget {
                max_handles: Some(((n as f64 * share).ceil() as usize).max(1)),
                max_memory: Some(((charged as f64 * share).ceil() as u64).max(page)),
                max_open_files: Some(max_open_files),
            };
            let w = Workload {
                name: "sweep",
                label: "sweep",
                files: Files::Small,
                pattern,
                threads: 1,
                ops,
                budget,
                window: None,
                methods: &SWEPT,
            };
            let label = format!("{name} reads, budget {:.0}%", share * 100.0);
            notes.stage(label.clone());
            let lists = w.ops(set, &mut rng);
            let access = w.access(window);
            engine_open_files = access.managers[0].max_open_files();
            let methods = SWEPT
                .iter()
                .map(|&id| Ok((id, id.prepare(set, &access)?)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let progress = &mut notes.progress;
            let phased = !set.open.kept();
            let m = workloads::measure(&methods, &lists, args.repeat, &label, phased, |_, _| {
                progress.inc(1);
            })?;
            let per_read = |id: MethodId| {
                m.best
                    .get(&id)
                    .map_or(0.0, |r| r.time.as_nanos() as f64 / ops as f64)
            };
            // The buffer's first run starts with nothing mapped, as MIN.
            let stats = m.first.get(&MethodId::Buffer);
            let min = super::belady_of(
                &lists,
                set,
                window,
                // The limits the engine has (it caps the handles at what
                // the kernel's map count leaves), not those asked for.
                super::belady::Limits {
                    handles: access.managers[0].max_file_handles(),
                    bytes: access.managers[0].max_mapped_memory_size(),
                },
            );
            points.push(SweepPoint {
                pattern: name,
                share,
                // What the engine has (and MIN got): the budget's, capped.
                max_handles: access.managers[0].max_file_handles(),
                max_memory_size: budget.max_memory.unwrap_or(0),
                ns_per_read: SWEPT.iter().map(|&id| (id.key(), per_read(id))).collect(),
                buffer_hit_ratio: stats.map_or(0.0, |s| s.hit_ratio),
                buffer_pread_ratio: stats.map_or(0.0, |s| s.preads as f64 / ops as f64),
                belady_hit_ratio: min.hit_ratio(),
            });
        }
    }
    notes.progress.finish();
    let sweep = Sweep {
        schema: 1,
        files: n,
        files_bytes: set.bytes(),
        max_open_files: engine_open_files,
        reads_per_run: ops,
        repeat: args.repeat,
        points,
    };
    drop(data);
    // The chart first, whatever becomes of stdout; the figures are printed
    // even if it cannot be drawn.
    let drawn = draw_svg(&args.svg, &sweep);
    crate::output::print_with_chart(
        args.json,
        &sweep,
        |out| write_table(out, &sweep),
        &args.svg,
        drawn,
    )
}

/// The series of the charts: method, name, symbol in the terminal, colour.
const SERIES: [(MethodId, &str, char, RGBColor); 3] = [
    (
        MethodId::Buffer,
        "adaptive",
        'A',
        RGBColor(0x1f, 0x77, 0xb4),
    ),
    (
        MethodId::BufferMap,
        "always-map",
        'M',
        RGBColor(0xd6, 0x27, 0x28),
    ),
    (MethodId::Pread, "pread", 'P', RGBColor(0x2c, 0xa0, 0x2c)),
];

/// µs per read of `id` at `p`.
fn micros(p: &SweepPoint, id: MethodId) -> f64 {
    p.ns_per_read.get(id.key()).copied().unwrap_or(0.0) / 1000.0
}

fn write_table(out: &mut impl Write, s: &Sweep) -> std::io::Result<()> {
    writeln!(
        out,
        "smmap bench --sweep: {} small files ({}), {} random 4 KiB reads per run, best of {}",
        s.files,
        indicatif::HumanBytes(s.files_bytes),
        s.reads_per_run,
        s.repeat
    )?;
    writeln!(
        out,
        "budget: a share of the files' mappings (max handles) and bytes (max memory); µs per read"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<8} {:>6} {:>8} {:>11} {:>9} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "reads",
        "budget",
        "handles",
        "memory",
        "adaptive",
        "always-map",
        "pread",
        "hit",
        "copied",
        "MIN hit"
    )?;
    for p in &s.points {
        writeln!(
            out,
            "{:<8} {:>5.0}% {:>8} {:>11} {:>9.2} {:>11.2} {:>9.2} {:>8.1}% {:>8.1}% {:>8.1}%",
            p.pattern,
            p.share * 100.0,
            p.max_handles,
            indicatif::HumanBytes(p.max_memory_size).to_string(),
            micros(p, MethodId::Buffer),
            micros(p, MethodId::BufferMap),
            micros(p, MethodId::Pread),
            p.buffer_hit_ratio * 100.0,
            p.buffer_pread_ratio * 100.0,
            p.belady_hit_ratio * 100.0
        )?;
    }
    writeln!(
        out,
        "hit, copied: of the windows the adaptive buffer's reads touch, those mapped already, and of its reads, those served by pread, in its first run (from nothing mapped, as MIN); \
         MIN hit: Belady's MIN with bypass over the same reads under the same budget, offline."
    )?;
    for pattern in ["uniform", "skewed"] {
        let points: Vec<&SweepPoint> = s.points.iter().filter(|p| p.pattern == pattern).collect();
        writeln!(out)?;
        write_chart(out, pattern, &points)?;
    }
    Ok(())
}

/// The log-scale bounds of the charts' y axis, in µs, over all points.
fn y_range(points: &[&SweepPoint]) -> (f64, f64) {
    let values = points
        .iter()
        .flat_map(|p| SERIES.iter().map(|s| micros(p, s.0)))
        .filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= 0.0 {
        return (0.1, 10.0);
    }
    (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil()),
    )
}

/// A character chart: one column group per budget, µs per read on a log
/// scale, a letter per series (`*` where two meet).
fn write_chart(out: &mut impl Write, pattern: &str, points: &[&SweepPoint]) -> std::io::Result<()> {
    const ROWS: usize = 10;
    const COL: usize = 7;
    let (lo, hi) = y_range(points);
    let (llo, lhi) = (lo.log10(), hi.log10());
    let row_of = |v: f64| {
        let t = ((v.max(lo).log10() - llo) / (lhi - llo)).clamp(0.0, 1.0);
        ROWS - 1 - (t * (ROWS - 1) as f64).round() as usize
    };
    let mut grid = vec![vec![' '; points.len() * COL]; ROWS];
    for (i, p) in points.iter().enumerate() {
        for (id, _, mark, _) in SERIES {
            let v = micros(p, id);
            if v <= 0.0 {
                continue;
            }
            let cell = &mut grid[row_of(v)][i * COL + COL / 2];
            *cell = if *cell == ' ' { mark } else { '*' };
        }
    }
    let legend: Vec<String> = SERIES.iter().map(|s| format!("{} {}", s.2, s.1)).collect();
    writeln!(
        out,
        "µs per read, {pattern} reads, by budget (log scale; {})",
        legend.join(", ")
    )?;
    // The decades label the rows nearest them.
    let decades: Vec<(usize, f64)> = (llo.round() as i32..=lhi.round() as i32)
        .map(|d| (row_of(10f64.powi(d)), 10f64.powi(d)))
        .collect();
    for (r, line) in grid.iter().enumerate() {
        let axis = match decades.iter().find(|d| d.0 == r) {
            Some(&(_, value)) => format!("{value:>8}"),
            None => " ".repeat(8),
        };
        let text: String = line.iter().collect();
        writeln!(out, "{axis} |{}", text.trim_end())?;
    }
    writeln!(out, "{} +{}", " ".repeat(8), "-".repeat(points.len() * COL))?;
    let ticks: String = points
        .iter()
        .map(|p| format!("{:^COL$}", format!("{:.0}%", p.share * 100.0)))
        .collect();
    writeln!(out, "{}  {ticks}", " ".repeat(8))
}

/// Draws both patterns side by side to `path`.
fn draw_svg(path: &Path, s: &Sweep) -> anyhow::Result<()> {
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (960, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((1, 2));
        for (panel, pattern) in panels.iter().zip(["uniform", "skewed"]) {
            let points: Vec<&SweepPoint> =
                s.points.iter().filter(|p| p.pattern == pattern).collect();
            let (lo, hi) = y_range(&points);
            let title = match pattern {
                "uniform" => format!("uniform reads over {} files", s.files),
                _ => format!("80% of reads on 20% of {} files", s.files),
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d((0.008f64..1.25).log_scale(), (lo..hi).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("budget: share of the files' mappings and bytes")
                .y_desc("µs per 4 KiB read")
                .x_label_formatter(&|x| format!("{:.0}%", x * 100.0))
                .y_label_formatter(&|y| format!("{y}"))
                .draw()?;
            for (id, name, _, color) in SERIES {
                let line: Vec<(f64, f64)> =
                    points.iter().map(|p| (p.share, micros(p, id))).collect();
                chart
                    .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart.draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))
}

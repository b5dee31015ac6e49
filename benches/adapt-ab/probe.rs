//! Times `adapt_source_to_text` of this checkout (`new`) against another revision (`base`),
//! alternating the two in one process: see `benches/adapt_ab.sh`, which builds it.
//!
//! On a machine whose speed drifts for minutes at a time (a shared VM), two separate runs
//! compare two different machines; here each round adapts the same file with both, back to
//! back, and the ratio of the two times is taken per round.

use std::hint::black_box;
use std::time::Instant;

#[path = "input.rs"]
mod input;

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (bytes, rounds) = (arg(1, 1 << 20), arg(2, 200).max(1));
    let text = input::generate(bytes);
    let new_options = new::AdaptOptions::default();
    let base_options = base::AdaptOptions::default();
    let mut new_ms = Vec::with_capacity(rounds);
    let mut base_ms = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let file = new::SourceFile::new("Profilingfile", black_box(text.as_str()));
        black_box(new::adapt_source_to_text(&file, &new_options, false).expect("adapts"));
        new_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        let file = base::SourceFile::new("Profilingfile", black_box(text.as_str()));
        black_box(base::adapt_source_to_text(&file, &base_options, false).expect("adapts"));
        base_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let mut ratios: Vec<f64> = new_ms.iter().zip(&base_ms).map(|(n, b)| n / b).collect();
    for list in [&mut new_ms, &mut base_ms, &mut ratios] {
        list.sort_by(f64::total_cmp);
    }
    let at = |list: &[f64], q: f64| list[((list.len() - 1) as f64 * q).round() as usize];
    let mb_per_s = |ms: f64| text.len() as f64 / 1e6 / (ms / 1e3);
    for (name, list) in [("new", &new_ms), ("base", &base_ms)] {
        println!(
            "{name:>4}: min {:.2} ms ({:.1} MB/s), p10 {:.2} ms ({:.1} MB/s), median {:.2} ms",
            at(list, 0.0),
            mb_per_s(at(list, 0.0)),
            at(list, 0.1),
            mb_per_s(at(list, 0.1)),
            at(list, 0.5),
        );
    }
    println!(
        "{} bytes, {rounds} rounds: new/base time ratio p25 {:.3}, median {:.3}, p75 {:.3}",
        text.len(),
        at(&ratios, 0.25),
        at(&ratios, 0.5),
        at(&ratios, 0.75),
    );
}

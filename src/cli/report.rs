//! `bulletin campaigns report ID`: what a campaign did, for the person who sent it: a table on
//! the terminal, `--json`, `--csv`, and an HTML page with a chart beside the edition's output.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use super::output::{outln, print_table};
use super::{Context, UsageError};
use crate::store::{Breakdown, CampaignReport, ClickReport, Count, Store};
use crate::web::escape;

/// Gmail's and Yahoo's bulk-sender rules: complaints must stay under 0.3 %, and Google advises
/// staying under 0.1 %, where the report starts to warn.
const COMPLAINT_LIMIT: f64 = 0.003;
const COMPLAINT_WARNING: f64 = 0.001;

/// `campaigns report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Campaign id
    id: i64,
    /// One CSV table: a row for the whole campaign, then one per language and per domain
    #[arg(long)]
    csv: bool,
    /// Where to write the HTML page [default: <[server] archive_dir>/<slug>/report-<id>.html]
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// Runs `campaigns report`.
pub(crate) async fn run(ctx: &Context, store: &Store, args: &ReportArgs) -> anyhow::Result<()> {
    if ctx.json && args.csv {
        return Err(UsageError("--json and --csv are two formats: choose one".into()).into());
    }
    let r = store.campaign_report(args.id).await?;
    let page = args.html.clone().unwrap_or_else(|| {
        ctx.config
            .server
            .archive_dir
            .join(&r.edition_slug)
            .join(format!("report-{}.html", r.id))
    });
    if let Some(dir) = page.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&page, html(&r))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", page.display()))?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "report": &r,
            "complaint_rate": complaint_rate(&r),
            "duration_secs": duration_secs(&r),
            "html": page.display().to_string(),
        }))?;
    } else if args.csv {
        outln!("{}", csv(&r)?)?;
    } else {
        print(&r)?;
    }
    ctx.info(format!("report page: {}", page.display()));
    Ok(())
}

/// Complaints per message delivered (accepted and not bounced).
fn complaint_rate(r: &CampaignReport) -> Option<f64> {
    let complaints = count(&r.feedback, "complaint");
    (r.counts.sent > 0).then(|| complaints as f64 / r.counts.sent as f64)
}

fn duration_secs(r: &CampaignReport) -> Option<f64> {
    let parse = |t: &Option<String>| {
        t.as_deref().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    let (first, last) = (parse(&r.first_attempt)?, parse(&r.last_attempt)?);
    Some((last - first).as_seconds_f64().max(0.0))
}

fn count(counts: &[Count], key: &str) -> i64 {
    counts.iter().find(|c| c.key == key).map_or(0, |c| c.count)
}

fn list(counts: &[Count]) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|c| format!("{} {}", c.count, c.key))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lines every format starts from.
fn summary(r: &CampaignReport) -> Vec<String> {
    let n = &r.counts;
    let mut lines = vec![
        format!(
            "campaign #{}: {} → {} ({})",
            r.id, r.edition_slug, r.list_name, r.status
        ),
        format!("subject: {}", r.subject),
        format!(
            "audience {}: {} delivered, {} failed, {} bounced ({} hard, {} soft, {} rejected), {} skipped, {} uncertain, {} queued",
            n.total(),
            n.sent,
            n.failed,
            n.bounced,
            count(&r.feedback, "hard"),
            count(&r.feedback, "soft"),
            count(&r.feedback, "rejected"),
            n.skipped,
            n.uncertain + n.sending,
            n.queued
        ),
        format!(
            "complaints: {}; unsubscribes after this campaign: {}",
            count(&r.feedback, "complaint"),
            list(&r.unsubscribes)
        ),
    ];
    if let Some(c) = &r.clicks {
        lines.push(format!(
            "clicks: {} on {} link(s), counted without knowing who clicked; {} automated request(s) apart",
            c.total,
            c.links.len(),
            c.automated
        ));
    }
    if let Some(secs) = duration_secs(r) {
        let accepted: i64 = r.per_minute.iter().map(|m| m.sent).sum();
        let rate = if secs > 0.0 {
            format!("{:.0} messages/minute", accepted as f64 * 60.0 / secs)
        } else {
            "all at once".into()
        };
        lines.push(format!("send: {secs:.1} s, {rate}"));
    }
    if let Some(rate) = complaint_rate(r) {
        let flag = if rate > COMPLAINT_LIMIT {
            "  ABOVE Gmail's limit: mail to Gmail will be refused or go to spam"
        } else if rate > COMPLAINT_WARNING {
            "  WARNING: above 0.1 %, close to Gmail's limit"
        } else {
            ""
        };
        lines.push(format!(
            "complaint rate: {:.3} % (Gmail's limit {:.1} %){flag}",
            rate * 100.0,
            COMPLAINT_LIMIT * 100.0
        ));
    }
    lines
}

const BREAKDOWN_COLUMNS: [&str; 6] = [
    "audience",
    "delivered",
    "failed",
    "bounced",
    "complaints",
    "",
];

fn cells(b: &Breakdown) -> Vec<String> {
    vec![
        b.key.clone(),
        b.audience.to_string(),
        b.sent.to_string(),
        b.failed.to_string(),
        b.bounced.to_string(),
        b.complaints.to_string(),
    ]
}

fn print(r: &CampaignReport) -> anyhow::Result<()> {
    for line in summary(r) {
        outln!("{line}")?;
    }
    if !r.failed_why.is_empty() {
        outln!("\nfailed, why:")?;
        let rows: Vec<Vec<String>> = r
            .failed_why
            .iter()
            .map(|c| vec![c.count.to_string(), c.key.clone()])
            .collect();
        print_table(&["count", "relay's reply"], &rows)?;
    }
    for (title, rows) in [("language", &r.by_language), ("domain", &r.by_domain)] {
        outln!("\nper {title}:")?;
        let mut header = vec![title];
        header.extend_from_slice(&BREAKDOWN_COLUMNS[..5]);
        print_table(&header, &rows.iter().map(cells).collect::<Vec<_>>())?;
    }
    if let Some(c) = &r.clicks {
        outln!("\nclicks per link (aggregated; automated: requests that were not a browser's):")?;
        print_table(&LINK_COLUMNS, &link_rows(c))?;
        outln!("\nclicks per language:")?;
        print_table(&["language", "clicks"], &language_rows(c))?;
    }
    Ok(())
}

const LINK_COLUMNS: [&str; 4] = ["clicks", "automated", "variants", "link"];

/// [`LINK_COLUMNS`] per link.
fn link_rows(c: &ClickReport) -> Vec<Vec<String>> {
    c.links
        .iter()
        .map(|l| {
            vec![
                l.clicks.to_string(),
                l.automated.to_string(),
                l.variants.to_string(),
                l.url.clone(),
            ]
        })
        .collect()
}

/// `language, clicks` per language variant.
fn language_rows(c: &ClickReport) -> Vec<Vec<String>> {
    c.by_language
        .iter()
        .map(|b| vec![b.key.clone(), b.count.to_string()])
        .collect()
}

fn csv(r: &CampaignReport) -> anyhow::Result<String> {
    let mut header: Vec<String> = ["dimension", "value"]
        .iter()
        .chain(&BREAKDOWN_COLUMNS[..5])
        .map(|s| s.to_string())
        .collect();
    let n = &r.counts;
    let total = Breakdown {
        key: format!("campaign {}", r.id),
        audience: n.total(),
        sent: n.sent,
        failed: n.failed,
        bounced: n.bounced,
        complaints: count(&r.feedback, "complaint"),
    };
    let mut rows = vec![
        std::iter::once("campaign".to_string())
            .chain(cells(&total))
            .collect::<Vec<_>>(),
    ];
    for (dimension, list) in [("language", &r.by_language), ("domain", &r.by_domain)] {
        rows.extend(list.iter().map(|b| {
            std::iter::once(dimension.to_string())
                .chain(cells(b))
                .collect()
        }));
    }
    // `clicks` and `automated` columns only for campaigns that counted them, so the table of
    // the others keeps its shape; a `link` row per URL leaves the delivery columns empty.
    if let Some(c) = &r.clicks {
        header.extend(["clicks".into(), "automated".into()]);
        for row in &mut rows {
            match row[0].as_str() {
                "campaign" => row.extend([c.total.to_string(), c.automated.to_string()]),
                "language" => {
                    let clicks = count(&c.by_language, &row[1]);
                    row.extend([clicks.to_string(), String::new()]);
                }
                _ => row.extend([String::new(), String::new()]),
            }
        }
        rows.extend(c.links.iter().map(|l| {
            let mut row = vec!["link".to_string(), l.url.clone()];
            row.extend(std::iter::repeat_n(String::new(), 5));
            row.extend([l.clicks.to_string(), l.automated.to_string()]);
            row
        }));
    }
    super::campaigns::csv_table(&header, &rows)
}

/// The HTML page: the summary, a chart of each minute's outcomes (inline SVG, no script) and
/// the tables.
fn html(r: &CampaignReport) -> String {
    let mut page = String::with_capacity(8 * 1024);
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Campaign #{} report</title>\
         <style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.2rem .6rem;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}.warn{{color:#a00;font-weight:bold}}</style>\
         <h1>Campaign #{}</h1>",
        r.id, r.id
    );
    for line in summary(r) {
        let class = if line.contains("WARNING") || line.contains("ABOVE") {
            " class=\"warn\""
        } else {
            ""
        };
        let _ = write!(page, "<p{class}>{}</p>", escape(&line));
    }
    page.push_str("<h2>Sends per minute</h2>");
    page.push_str(&chart(r));
    for (title, rows) in [("language", &r.by_language), ("domain", &r.by_domain)] {
        let _ = write!(page, "<h2>Per {title}</h2><table><tr><th>{title}</th>");
        for h in &BREAKDOWN_COLUMNS[..5] {
            let _ = write!(page, "<th>{h}</th>");
        }
        page.push_str("</tr>");
        for b in rows.iter() {
            page.push_str("<tr>");
            for c in cells(b) {
                let _ = write!(page, "<td>{}</td>", escape(&c));
            }
            page.push_str("</tr>");
        }
        page.push_str("</table>");
    }
    if let Some(c) = &r.clicks {
        let tables = [
            ("Clicks per link", LINK_COLUMNS.as_slice(), link_rows(c)),
            (
                "Clicks per language",
                ["language", "clicks"].as_slice(),
                language_rows(c),
            ),
        ];
        for (title, columns, rows) in tables {
            let _ = write!(page, "<h2>{title}</h2><table><tr>");
            for h in columns {
                let _ = write!(page, "<th>{h}</th>");
            }
            page.push_str("</tr>");
            for row in rows {
                page.push_str("<tr>");
                for cell in row {
                    let _ = write!(page, "<td>{}</td>", escape(&cell));
                }
                page.push_str("</tr>");
            }
            page.push_str("</table>");
        }
        page.push_str(
            "<p>Counted by the redirect on <code>bulletin serve</code>, per link, never per \
             person. Automated: requests without the language header every browser sends \
             (scanners, previewers). Scanners that imitate a browser count as clicks.</p>",
        );
    }
    page.push_str("</html>\n");
    page
}

/// A stacked bar per minute: accepted (green), deferred (amber), failed (red).
fn chart(r: &CampaignReport) -> String {
    let max = r
        .per_minute
        .iter()
        .map(|m| m.sent + m.failed + m.deferred)
        .max()
        .unwrap_or(0)
        .max(1);
    let (bar, gap, height) = (24, 6, 160);
    let width = r.per_minute.len().max(1) * (bar + gap) + gap;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"messages per minute\" width=\"{width}\" height=\"{}\" \
         viewBox=\"0 0 {width} {}\">",
        height + 20,
        height + 20
    );
    for (i, m) in r.per_minute.iter().enumerate() {
        let x = gap + i * (bar + gap);
        let mut y = height;
        for (value, colour, what) in [
            (m.sent, "#2a7", "accepted"),
            (m.deferred, "#e90", "deferred"),
            (m.failed, "#c33", "failed"),
        ] {
            let h =
                usize::try_from(value).unwrap_or(0) * height / usize::try_from(max).unwrap_or(1);
            if h == 0 {
                continue;
            }
            y -= h;
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h}\" fill=\"{colour}\">\
                 <title>{} {value} {what}</title></rect>",
                escape(&m.minute)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"{}\" font-size=\"9\">{}</text>",
            height + 14,
            escape(m.minute.get(11..).unwrap_or(&m.minute))
        );
    }
    svg.push_str("</svg>");
    svg
}

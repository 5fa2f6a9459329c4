//! `podvm image load -i FILE`, `podvm image ls`.

use anyhow::{Context, Result};
use podvm_image::ImageStore;

use super::Ctx;
use crate::cli::ImageCommand;

pub fn run(ctx: &Ctx, cmd: &ImageCommand) -> Result<()> {
    let store = ImageStore::open(&ctx.image_dir)
        .with_context(|| format!("cannot open the image store at {}", ctx.image_dir.display()))?;
    match cmd {
        ImageCommand::Load { input } => {
            let images = store
                .load(input)
                .with_context(|| format!("cannot load {}", input.display()))?;
            for img in images {
                if img.names.is_empty() {
                    println!("Loaded image: {}", img.id);
                }
                for n in &img.names {
                    println!("Loaded image: {n}");
                }
            }
        }
        ImageCommand::Ls => {
            let mut rows = vec![["IMAGE".to_string(), "IMAGE ID".into(), "SIZE".into()]];
            for img in store.list()? {
                let id = img
                    .id
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect::<String>();
                let names = if img.names.is_empty() {
                    vec!["<none>".to_string()]
                } else {
                    img.names.clone()
                };
                for n in names {
                    rows.push([n, id.clone(), human_size(img.size)]);
                }
            }
            let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
            for r in rows {
                println!("{:<w0$}   {:<12}   {}", r[0], r[1], r[2]);
            }
        }
    }
    Ok(())
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

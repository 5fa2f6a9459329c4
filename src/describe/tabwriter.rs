//! Go's `text/tabwriter` as kubectl's `describe` sets it up (minimum width
//! 0, padding 2, padded with spaces, cells left-aligned): text is cut into
//! cells at tabs; a column block is a run of consecutive lines that have a
//! cell in that column, and every cell of a block is padded to the widest
//! one plus the padding. The last cell of a line is not in any column.

const PADDING: usize = 2;

/// Aligns `text` the way kubectl's tabwriter does.
pub fn align(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut widths_of = vec![Vec::new(); lines.len()];
    format(&lines, &mut Vec::new(), 0, lines.len(), &mut widths_of);
    let mut out = String::with_capacity(text.len());
    for (i, (line, widths)) in lines.iter().zip(&widths_of).enumerate() {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(j) {
                let pad = w.saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
    out
}

/// Go's `Writer.format`: gives each line of `line0..line1` the widths of
/// the columns it is aligned to (`widths` holds those of the columns to
/// the left).
fn format(
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    line0: usize,
    line1: usize,
    out: &mut [Vec<usize>],
) {
    let column = widths.len();
    let has_column = |l: usize| column + 1 < lines[l].len();
    let mut start = line0;
    let mut this = line0;
    while this < line1 {
        if !has_column(this) {
            this += 1;
            continue;
        }
        for slot in &mut out[start..this] {
            slot.clone_from(widths);
        }
        start = this;
        let mut width = 0;
        while this < line1 && has_column(this) {
            width = width.max(lines[this][column].chars().count() + PADDING);
            this += 1;
        }
        widths.push(width);
        format(lines, widths, start, this, out);
        widths.pop();
        start = this;
    }
    for slot in &mut out[start..line1] {
        slot.clone_from(widths);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_align_separately_and_the_last_cell_is_free() {
        let text = "Name:\tweb\nNamespace:\tdefault\nContainers:\n  app:\n    Image:\tbusybox\n    Container ID:\tx\n";
        assert_eq!(
            align(text),
            "Name:       web\nNamespace:  default\nContainers:\n  app:\n    Image:         busybox\n    Container ID:  x\n"
        );
    }

    #[test]
    fn nested_columns_take_the_widths_of_their_own_block() {
        // The last line shares column 0 with the table above (consecutive
        // lines), but not column 1.
        let text =
            "  Type\tReason\tAge\n  ----\t------\t---\n  Normal\tScheduled\t5s\nx\ta\n\ny\tb\n";
        assert_eq!(
            align(text),
            "  Type    Reason     Age\n  ----    ------     ---\n  Normal  Scheduled  5s\nx         a\n\ny  b\n"
        );
    }
}

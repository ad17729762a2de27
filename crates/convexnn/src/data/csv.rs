//! Delimited text files (CSV, TSV, semicolon- or space-separated), plain or gzipped.
//!
//! Every cell must be a finite number; an optional header line names the columns. Blank lines are
//! skipped, fields are trimmed, and a field may be wrapped in double quotes (`""` inside quotes is
//! a literal quote).

use std::path::Path;

use faer::Mat;

use super::{read_text, Dataset};
use crate::error::{Error, Result};

/// Which column of a CSV file holds the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetColumn {
    /// The column with this header name (the file must have a header).
    Name(String),
    /// The column at this 0-based position (0 is the first column).
    Index(usize),
    /// The last column.
    Last,
    /// Several target columns, in this order (each a name, an index or the last column): the data
    /// set's [`Dataset::targets`] when there are two or more.
    Columns(Vec<TargetColumn>),
}

/// How [`load_csv`] reads a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// The target column; the other columns are the features.
    pub target: TargetColumn,
    /// Whether the first non-blank line holds column names (default true).
    pub has_header: bool,
    /// The field separator; `None` detects it from the first line: a tab, else a comma, else a
    /// semicolon, else runs of whitespace. `Some(b' ')` also means runs of whitespace.
    pub delimiter: Option<u8>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            target: TargetColumn::Last,
            has_header: true,
            delimiter: None,
        }
    }
}

/// A field separator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delim {
    /// A single character.
    Char(char),
    /// One or more whitespace characters.
    Spaces,
}

/// The parsed numeric content of a delimited file.
struct Table {
    /// Header names, when the file has a header.
    names: Option<Vec<String>>,
    /// Number of columns.
    ncols: usize,
    /// Number of data rows.
    nrows: usize,
    /// The cells, row after row.
    values: Vec<f64>,
}

/// Loads a data set from a delimited text file: one column (see [`CsvOptions::target`]) is the
/// target and all the others are features, named after the header or `x0, x1, …` without one.
/// With [`TargetColumn::Columns`] of two or more columns the targets are n × c, named after the
/// header or `y0, y1, …` without one.
pub fn load_csv(path: &Path, opts: &CsvOptions) -> Result<Dataset> {
    let table = read_table(path, Some(opts.has_header), opts.delimiter)?;
    dataset_from_table(path, table, opts)
}

/// Parses CSV text already in memory (e.g. data compiled into a program); `source` names it in errors.
pub fn parse_csv(text: &str, source: &Path, opts: &CsvOptions) -> Result<Dataset> {
    let table = parse_table(text, source, Some(opts.has_header), opts.delimiter)?;
    dataset_from_table(source, table, opts)
}

fn dataset_from_table(path: &Path, table: Table, opts: &CsvOptions) -> Result<Dataset> {
    if table.ncols < 2 {
        return Err(Error::InvalidData(format!(
            "{}: needs at least 2 columns (features and a target), found {}",
            path.display(),
            table.ncols
        )));
    }
    let targets = target_indices(path, &table, &opts.target)?;
    let keep: Vec<usize> = (0..table.ncols).filter(|k| !targets.contains(k)).collect();
    if keep.is_empty() {
        return Err(Error::InvalidSetting(format!(
            "{}: every one of its {} columns is a target: no feature column is left",
            path.display(),
            table.ncols
        )));
    }
    let cell = |i: usize, k: usize| table.values[i * table.ncols + k];
    let x = Mat::from_fn(table.nrows, keep.len(), |i, k| cell(i, keep[k]));
    let names = match &table.names {
        Some(names) => keep.iter().map(|&k| names[k].clone()).collect(),
        None => (0..keep.len()).map(|k| format!("x{k}")).collect(),
    };
    if let [t] = targets[..] {
        let y = (0..table.nrows).map(|i| cell(i, t)).collect();
        return Dataset::new(x, y, Some(names));
    }
    let values = Mat::from_fn(table.nrows, targets.len(), |i, k| cell(i, targets[k]));
    let target_names = table
        .names
        .as_ref()
        .map(|names| targets.iter().map(|&k| names[k].clone()).collect());
    Dataset::with_targets(x, values, Some(names), target_names)
}

/// Loads a matrix of features only (no target column), e.g. new data to predict on. The first line
/// is taken as a header when none of its fields is a number; the names are `x0, x1, …` otherwise.
pub fn load_csv_matrix(path: &Path) -> Result<(Mat<f64>, Vec<String>)> {
    let table = read_table(path, None, None)?;
    let x = Mat::from_fn(table.nrows, table.ncols, |i, k| {
        table.values[i * table.ncols + k]
    });
    let names = table
        .names
        .unwrap_or_else(|| (0..table.ncols).map(|k| format!("x{k}")).collect());
    Ok((x, names))
}

/// Reads and parses a whole file; `has_header: None` decides from the first line.
fn read_table(path: &Path, has_header: Option<bool>, delimiter: Option<u8>) -> Result<Table> {
    let text = read_text(path)?;
    parse_table(&text, path, has_header, delimiter)
}

/// Parses delimited text; `has_header: None` decides from the first line.
fn parse_table(
    text: &str,
    path: &Path,
    has_header: Option<bool>,
    delimiter: Option<u8>,
) -> Result<Table> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((first_no, first)) = lines.next() else {
        return Err(no_data_rows(path));
    };
    let delim = match delimiter {
        Some(b' ') => Delim::Spaces,
        Some(b) => Delim::Char(b as char),
        None => detect_delimiter(first),
    };
    let first_fields = split_fields(first, delim);
    let header = has_header.unwrap_or_else(|| looks_like_header(&first_fields));
    let mut table = Table {
        names: None,
        ncols: first_fields.len(),
        nrows: 0,
        values: Vec::new(),
    };
    if header {
        table.names = Some(first_fields);
    } else {
        push_row(path, &mut table, first_no, first_no, first_fields)?;
    }
    for (no, line) in lines {
        push_row(path, &mut table, no, first_no, split_fields(line, delim))?;
    }
    if table.nrows == 0 {
        return Err(no_data_rows(path));
    }
    Ok(table)
}

/// The error for a file without any data line.
fn no_data_rows(path: &Path) -> Error {
    Error::parse(path, "end of file", "no data rows")
}

/// Parses one data line into `table`, checking its width against the first line's.
fn push_row(
    path: &Path,
    table: &mut Table,
    line: usize,
    first_line: usize,
    fields: Vec<String>,
) -> Result<()> {
    if fields.len() != table.ncols {
        return Err(Error::parse(
            path,
            format!("line {line}"),
            format!(
                "line {line} has {} fields, expected {} (as on line {first_line})",
                fields.len(),
                table.ncols
            ),
        ));
    }
    for (k, field) in fields.iter().enumerate() {
        let name = table.names.as_ref().map(|n| n[k].as_str());
        table.values.push(parse_cell(path, line, k, name, field)?);
    }
    table.nrows += 1;
    Ok(())
}

/// Picks the separator of a line: a tab, else a comma, else a semicolon, else whitespace.
fn detect_delimiter(line: &str) -> Delim {
    ['\t', ',', ';']
        .into_iter()
        .find(|&c| line.contains(c))
        .map_or(Delim::Spaces, Delim::Char)
}

/// Whether a first line is a header: none of its fields is a number.
fn looks_like_header(fields: &[String]) -> bool {
    fields.iter().all(|f| f.parse::<f64>().is_err())
}

/// Splits a line into trimmed fields, honouring double quotes for single-character separators.
fn split_fields(line: &str, delim: Delim) -> Vec<String> {
    let d = match delim {
        Delim::Spaces => return line.split_whitespace().map(str::to_string).collect(),
        Delim::Char(d) => d,
    };
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c != '"' {
                cur.push(c);
            } else if chars.peek() == Some(&'"') {
                cur.push('"');
                chars.next();
            } else {
                in_quotes = false;
            }
        } else if c == '"' && cur.trim().is_empty() {
            cur.clear();
            in_quotes = true;
        } else if c == d {
            fields.push(cur.trim().to_string());
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    fields.push(cur.trim().to_string());
    fields
}

/// Describes a cell for error messages: `line 7, column 3 ("age")`, with a 1-based column.
pub(crate) fn cell_location(line: usize, col: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("line {line}, column {} (\"{name}\")", col + 1),
        None => format!("line {line}, column {}", col + 1),
    }
}

/// Parses one cell as a finite number; `col` is 0-based, `name` the column's header name.
pub(crate) fn parse_cell(
    path: &Path,
    line: usize,
    col: usize,
    name: Option<&str>,
    text: &str,
) -> Result<f64> {
    let fail = |message: String| Error::parse(path, cell_location(line, col, name), message);
    if text.is_empty() {
        return Err(fail("missing value (empty cell)".into()));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(fail(format!("value \"{text}\" is not finite"))),
        Err(_) => Err(fail(format!("cannot parse \"{text}\" as a number"))),
    }
}

/// The positions of the target columns (one, or those of [`TargetColumn::Columns`]), checked
/// against the table.
fn target_indices(path: &Path, table: &Table, target: &TargetColumn) -> Result<Vec<usize>> {
    let TargetColumn::Columns(list) = target else {
        return Ok(vec![target_index(path, table, target)?]);
    };
    if list.is_empty() {
        return Err(Error::InvalidSetting(format!(
            "{}: the list of target columns is empty",
            path.display()
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    for t in list {
        if matches!(t, TargetColumn::Columns(_)) {
            return Err(Error::InvalidSetting(format!(
                "{}: a list of target columns cannot hold another list",
                path.display()
            )));
        }
        let k = target_index(path, table, t)?;
        if out.contains(&k) {
            let name = table
                .names
                .as_ref()
                .map_or(String::new(), |n| format!(" (\"{}\")", n[k]));
            return Err(Error::InvalidSetting(format!(
                "{}: target column {k}{name} is given twice",
                path.display()
            )));
        }
        out.push(k);
    }
    Ok(out)
}

/// The position of one target column, checked against the table.
fn target_index(path: &Path, table: &Table, target: &TargetColumn) -> Result<usize> {
    let ncols = table.ncols;
    match target {
        TargetColumn::Last => Ok(ncols - 1),
        TargetColumn::Index(i) if *i < ncols => Ok(*i),
        TargetColumn::Index(i) => Err(Error::InvalidSetting(format!(
            "{}: target column index {i} is out of range: the file has {ncols} columns \
             (0-based indices 0 to {})",
            path.display(),
            ncols - 1
        ))),
        TargetColumn::Name(name) => target_by_name(path, table.names.as_deref(), name),
        TargetColumn::Columns(_) => Err(Error::InvalidSetting(format!(
            "{}: a list of target columns cannot hold another list",
            path.display()
        ))),
    }
}

/// The position of the column called `name` in the header.
fn target_by_name(path: &Path, names: Option<&[String]>, name: &str) -> Result<usize> {
    let Some(names) = names else {
        return Err(Error::InvalidSetting(format!(
            "{}: target column \"{name}\" is given by name but the file is read without a header",
            path.display()
        )));
    };
    names.iter().position(|n| n == name).ok_or_else(|| {
        Error::InvalidSetting(format!(
            "{}: no column named \"{name}\"; available columns: {}",
            path.display(),
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::{gzip, temp_dir, temp_file};

    fn opts(target: TargetColumn) -> CsvOptions {
        CsvOptions {
            target,
            ..CsvOptions::default()
        }
    }

    fn err(name: &str, text: &str, o: &CsvOptions) -> String {
        let path = temp_file(name, text.as_bytes());
        load_csv(&path, o).unwrap_err().to_string()
    }

    #[test]
    fn reads_header_target_by_name_and_trailing_blank_line() {
        let text = "a, age ,y\n1,2,3\n\n4, 5 ,6\n\n";
        let path = temp_file("ok.csv", text.as_bytes());
        let d = load_csv(&path, &opts(TargetColumn::Name("age".into()))).unwrap();
        assert_eq!(d.feature_names, vec!["a", "y"]);
        assert_eq!(d.y, vec![2.0, 5.0]);
        assert_eq!((d.x[(1, 0)], d.x[(1, 1)]), (4.0, 6.0));
        let d = load_csv(&path, &opts(TargetColumn::Index(0))).unwrap();
        assert_eq!(d.y, vec![1.0, 4.0]);
        assert_eq!(d.feature_names, vec!["age", "y"]);
    }

    #[test]
    fn detects_delimiters_and_quotes() {
        for (name, text) in [
            ("tab.tsv", "p\tq\n1\t2\n3\t4\n"),
            ("semi.csv", "p;q\n1;2\n3;4\n"),
            ("space.txt", "p   q\n1  2\n 3 4\n"),
            ("quoted.csv", "\"p\",\"q\"\n\"1\",2\r\n3,4\r\n"),
        ] {
            let path = temp_file(name, text.as_bytes());
            let d = load_csv(&path, &CsvOptions::default()).unwrap();
            assert_eq!(d.feature_names, vec!["p"], "{name}");
            assert_eq!(d.y, vec![2.0, 4.0], "{name}");
            assert_eq!(d.x[(1, 0)], 3.0, "{name}");
        }
        let path = temp_file("pipe.csv", b"1|2|3\n4|5|6\n");
        let o = CsvOptions {
            has_header: false,
            delimiter: Some(b'|'),
            ..CsvOptions::default()
        };
        let d = load_csv(&path, &o).unwrap();
        assert_eq!(d.feature_names, vec!["x0", "x1"]);
        assert_eq!(d.y, vec![3.0, 6.0]);
    }

    #[test]
    fn reads_gzip_by_name_and_by_magic() {
        let gz = gzip(b"1,2\n3,4\n");
        let o = CsvOptions {
            has_header: false,
            ..CsvOptions::default()
        };
        for name in ["d.csv.gz", "d.csv"] {
            let d = load_csv(&temp_file(name, &gz), &o).unwrap();
            assert_eq!(d.y, vec![2.0, 4.0]);
        }
    }

    #[test]
    fn missing_file() {
        let path = temp_dir("csv-missing").join("nope.csv");
        let e = load_csv(&path, &CsvOptions::default()).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
        assert!(e.to_string().contains("nope.csv"));
    }

    #[test]
    fn empty_and_header_only() {
        let o = CsvOptions::default();
        for text in ["", "\n\n", "a,b\n", "a,b\n  \n"] {
            let e = err("empty.csv", text, &o);
            assert!(e.contains("empty.csv") && e.contains("no data rows"), "{e}");
        }
    }

    #[test]
    fn ragged_row() {
        let e = err(
            "ragged.csv",
            "a,b,c,d\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3\n",
            &CsvOptions::default(),
        );
        assert!(e.contains("line 5 has 3 fields, expected 4"), "{e}");
    }

    #[test]
    fn non_numeric_cell() {
        let text = "a,b,age,y\n1,2,3,4\n1,2,3,4\n\n1,2,3,4\n1,2,3,4\n1,2,abc,4\n";
        let e = err("data.csv", text, &CsvOptions::default());
        assert!(
            e.contains(r#"data.csv: line 7, column 3 ("age"): cannot parse "abc" as a number"#),
            "{e}"
        );
    }

    #[test]
    fn non_finite_and_missing_cells() {
        let o = CsvOptions::default();
        let e = err("nan.csv", "a,b\n1,nan\n", &o);
        assert!(
            e.contains(r#"line 2, column 2 ("b")"#) && e.contains("not finite"),
            "{e}"
        );
        let e = err("inf.csv", "a,b\n1,2\n-inf,2\n", &o);
        assert!(
            e.contains("line 3, column 1") && e.contains("\"-inf\" is not finite"),
            "{e}"
        );
        let e = err("gap.csv", "a,b,c\n1,,3\n", &o);
        assert!(
            e.contains(r#"line 2, column 2 ("b")"#) && e.contains("missing"),
            "{e}"
        );
    }

    #[test]
    fn unknown_target_name_lists_columns() {
        let e = err("t.csv", "a,b\n1,2\n", &opts(TargetColumn::Name("z".into())));
        assert!(e.contains("t.csv") && e.contains(r#""z""#), "{e}");
        assert!(e.contains(r#""a", "b""#), "{e}");
        let o = CsvOptions {
            target: TargetColumn::Name("a".into()),
            has_header: false,
            delimiter: None,
        };
        assert!(err("t.csv", "1,2\n", &o).contains("without a header"));
    }

    #[test]
    fn target_index_out_of_range() {
        let e = err("i.csv", "a,b\n1,2\n", &opts(TargetColumn::Index(2)));
        assert!(e.contains("index 2") && e.contains("2 columns"), "{e}");
    }

    #[test]
    fn several_target_columns() {
        let text = "a,y1,b,y2\n1,2,3,4\n5,6,7,8\n9,10,11,12\n";
        let path = temp_file("multi.csv", text.as_bytes());
        let cols = |v: Vec<TargetColumn>| opts(TargetColumn::Columns(v));
        let d = load_csv(
            &path,
            &cols(vec![
                TargetColumn::Name("y2".into()),
                TargetColumn::Index(1),
            ]),
        )
        .unwrap();
        assert_eq!(d.feature_names, vec!["a", "b"]);
        assert_eq!(d.outputs(), 2);
        let t = d.targets.as_ref().unwrap();
        assert_eq!(t.names, vec!["y2", "y1"]);
        assert_eq!((t.values[(2, 0)], t.values[(2, 1)]), (12.0, 10.0));
        assert_eq!(d.y, vec![4.0, 8.0, 12.0]);
        assert_eq!((d.x[(1, 0)], d.x[(1, 1)]), (5.0, 7.0));
        // One entry is the plain single-target case.
        let d = load_csv(&path, &cols(vec![TargetColumn::Name("y1".into())])).unwrap();
        assert!(d.targets.is_none());
        assert_eq!(d.y, vec![2.0, 6.0, 10.0]);
        // Without a header the targets are y0, y1, ….
        let o = CsvOptions {
            target: TargetColumn::Columns(vec![TargetColumn::Index(0), TargetColumn::Last]),
            has_header: false,
            delimiter: None,
        };
        let d = load_csv(&temp_file("nh.csv", b"1,2,3\n4,5,6\n"), &o).unwrap();
        assert_eq!(d.targets.as_ref().unwrap().names, vec!["y0", "y1"]);
        assert_eq!(d.feature_names, vec!["x0"]);
        assert_eq!(d.x[(1, 0)], 5.0);
        // Errors: a repeated column, no feature left, an unknown name.
        let e = err(
            "m.csv",
            text,
            &cols(vec![
                TargetColumn::Name("y1".into()),
                TargetColumn::Index(1),
            ]),
        );
        assert!(e.contains("given twice") && e.contains("\"y1\""), "{e}");
        let e = err(
            "m.csv",
            "p,q\n1,2\n",
            &cols(vec![TargetColumn::Index(0), TargetColumn::Index(1)]),
        );
        assert!(e.contains("no feature column"), "{e}");
        let e = err(
            "m.csv",
            text,
            &cols(vec![
                TargetColumn::Name("y1".into()),
                TargetColumn::Name("y3".into()),
            ]),
        );
        assert!(
            e.contains("\"y3\"") && e.contains("available columns"),
            "{e}"
        );
    }

    #[test]
    fn single_column_is_rejected() {
        let e = err("one.csv", "a\n1\n", &CsvOptions::default());
        assert!(e.contains("at least 2 columns"), "{e}");
    }

    #[test]
    fn matrix_with_and_without_header() {
        let (x, names) = load_csv_matrix(&temp_file("m.csv", b"u,v\n1,2\n3,4\n")).unwrap();
        assert_eq!(names, vec!["u", "v"]);
        assert_eq!((x.nrows(), x.ncols(), x[(1, 0)]), (2, 2, 3.0));
        let (x, names) = load_csv_matrix(&temp_file("m.csv", b"1 2 3\n4 5 6\n")).unwrap();
        assert_eq!(names, vec!["x0", "x1", "x2"]);
        assert_eq!((x.nrows(), x[(1, 2)]), (2, 6.0));
        let e = load_csv_matrix(&temp_file("m.csv", b"1,x\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1, column 2") && e.contains("\"x\""), "{e}");
    }
}

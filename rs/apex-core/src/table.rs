//! What every table of columns shares: its row count is the length of its `ts` column.

/// Implements `len` (the rows: the length of the `ts` column) and `is_empty` for tables of columns (owned `Vec`s
/// or borrowed slices), so each table type declares only its columns.
#[macro_export]
macro_rules! row_count {
    ($($table:ty),+ $(,)?) => {
        $(
            impl $table {
                /// Number of rows (the length of `ts`; the other columns are checked against it).
                #[must_use]
                pub fn len(&self) -> usize {
                    self.ts.len()
                }

                /// Whether there are no rows.
                #[must_use]
                pub fn is_empty(&self) -> bool {
                    self.ts.is_empty()
                }
            }
        )+
    };
}

/// The first of a table's columns whose length is not `expected`, as `Some((name, length))`: every table checks
/// its columns against `ts` in the same order and names the first one that is off.
///
/// `apex_core::short_column!(table, expected; a, b, c)` looks at `table.a`, `table.b`, `table.c` (anything with a
/// `len()`) and names each by its field name.
#[macro_export]
macro_rules! short_column {
    ($table:expr, $expected:expr; $($column:ident),+ $(,)?) => {
        [$((stringify!($column), $table.$column.len())),+].into_iter().find(|&(_, got)| got != $expected)
    };
}

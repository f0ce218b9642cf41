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

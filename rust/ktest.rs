// SPDX-License-Identifier: GPL-2.0

//! KUnit suites written in Rust.
//!
//! Linux 6.12 has no `#[kunit_tests]`, so [`kunit_suite!`] builds what the C
//! `kunit_test_suites()` macro builds: a zero-terminated `kunit_case` table, a
//! `kunit_suite`, and a pointer to it in section `.kunit_test_suites`, which the
//! module loader hands to KUnit. KUnit runs the suites when the module goes live
//! (right after `init` succeeds), so they run at `insmod`.
//!
//! Cases are plain functions returning [`TestResult`]; the check macros return
//! early with a [`Failure`], so destructors run (unlike KUnit's C assertions,
//! which abort the test thread).

use crate::sys::bindings;
use core::fmt;

/// Where and why a check failed.
pub(crate) struct Failure {
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) check: &'static str,
}

/// The outcome of one test case.
pub(crate) type TestResult = core::result::Result<(), Failure>;

/// Fails the case unless the condition holds.
macro_rules! check {
    ($cond:expr $(,)?) => {
        if !$cond {
            return Err($crate::ktest::Failure {
                file: file!(),
                line: line!(),
                check: stringify!($cond),
            });
        }
    };
}

/// Fails the case unless both sides are equal; prints both values.
macro_rules! check_eq {
    ($left:expr, $right:expr $(,)?) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            $crate::ktest::diagnostic(format_args!("left:  {:?}", left));
            $crate::ktest::diagnostic(format_args!("right: {:?}", right));
            return Err($crate::ktest::Failure {
                file: file!(),
                line: line!(),
                check: concat!(stringify!($left), " == ", stringify!($right)),
            });
        }
    }};
}

/// Prints a KTAP diagnostic line inside the running case.
pub(crate) fn diagnostic(args: fmt::Arguments<'_>) {
    kernel::kunit::err(format_args!("    # {}\n", args));
}

/// Runs one case and reports a failure to KUnit.
///
/// # Safety
///
/// `test` must be the `struct kunit` KUnit passed to the running case.
pub(crate) unsafe fn run(test: *mut bindings::kunit, case: fn() -> TestResult) {
    if let Err(failure) = case() {
        diagnostic(format_args!(
            "check failed at {}:{}: {}",
            failure.file, failure.line, failure.check
        ));
        // SAFETY: `test` is the running test, as the caller guarantees.
        unsafe { bindings::rvhost_kunit_set_failure(test) };
    }
}

/// A suite name as KUnit stores it (NUL-padded, at most 255 bytes).
pub(crate) const fn suite_name(name: &str) -> [kernel::ffi::c_char; 256] {
    let bytes = name.as_bytes();
    assert!(bytes.len() < 256);
    let mut out = [0; 256];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i] as kernel::ffi::c_char;
        i += 1;
    }
    out
}

/// Declares a KUnit suite `$name` whose cases are the given functions
/// (`fn() -> TestResult`, in scope where the macro is used).
macro_rules! kunit_suite {
    ($suite:ident, [$($case:ident),+ $(,)?]) => {
        #[allow(non_upper_case_globals, unsafe_code)]
        mod $suite {
            use $crate::sys::bindings;

            $(
                /// KUnit entry point of this case.
                ///
                /// # Safety
                ///
                /// Called by KUnit with the running test.
                unsafe extern "C" fn $case(test: *mut bindings::kunit) {
                    // SAFETY: KUnit passes the running test.
                    unsafe { $crate::ktest::run(test, super::$case) }
                }
            )+

            const MODULE_NAME: &str = "rvhost_net\0";

            // KUnit writes each case's status and log here, so it is `static mut`.
            static mut CASES: [bindings::kunit_case; [$(stringify!($case)),+].len() + 1] = [
                $(
                    bindings::kunit_case {
                        run_case: Some($case),
                        name: concat!(stringify!($case), "\0").as_ptr().cast(),
                        module_name: MODULE_NAME.as_ptr().cast_mut().cast(),
                        // SAFETY: all-zero is the "unset" state of the remaining fields.
                        ..unsafe { core::mem::zeroed() }
                    },
                )+
                // SAFETY: the table ends with an all-zero case.
                unsafe { core::mem::zeroed() },
            ];

            static mut SUITE: bindings::kunit_suite = bindings::kunit_suite {
                name: $crate::ktest::suite_name(concat!("rvhost_", stringify!($suite))),
                test_cases: core::ptr::addr_of_mut!(CASES).cast(),
                // SAFETY: all-zero is the "unset" state of the remaining fields.
                ..unsafe { core::mem::zeroed() }
            };

            /// The module loader collects this section and hands the suites to KUnit.
            #[used]
            #[link_section = ".kunit_test_suites"]
            static mut SUITE_ENTRY: *mut bindings::kunit_suite = core::ptr::addr_of_mut!(SUITE);
        }
    };
}

//! Formats the `.hog` file named on the command line to stdout, or prints its parse errors.

use std::io::Read;

fn main() {
    let mut source = String::new();
    match std::env::args().nth(1) {
        Some(path) => source = std::fs::read_to_string(path).expect("readable file"),
        None => {
            std::io::stdin()
                .read_to_string(&mut source)
                .expect("readable stdin");
        }
    }
    match hogsend_dsl::format(&source) {
        Ok(formatted) => print!("{formatted}"),
        Err(errors) => {
            for e in errors {
                eprintln!("{}..{}: {}", e.span.start, e.span.end, e.message());
            }
            std::process::exit(1);
        }
    }
}

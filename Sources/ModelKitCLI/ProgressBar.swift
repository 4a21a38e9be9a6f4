import Foundation

/// A one-line progress bar redrawn in place on a terminal (at most ten times a second, always at
/// the end). Off a terminal it draws nothing: callers print plain lines instead if they want any.
final class ProgressBar {
    let isTerminal: Bool
    private var lastDraw: UInt64 = 0
    private var drawn = false

    /// `enabled: false` (e.g. for --json output) keeps it silent even on a terminal.
    init(enabled: Bool = true) {
        isTerminal = enabled && isatty(STDOUT_FILENO) != 0
    }

    /// Redraws "[====    ] text" for `done` of `total` steps.
    func update(done: Int, total: Int, text: String) {
        guard isTerminal else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard done >= total || now - lastDraw > 100_000_000 else { return }
        lastDraw = now
        let width = 24
        let filled = width * min(done, total) / max(total, 1)
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        print("\r[\(bar)] \(text)\u{1B}[K", terminator: "")
        fflush(nil)
        drawn = true
    }

    /// Ends the bar: keeps it on its own line, or (`clear`) erases it.
    func finish(clear: Bool = false) {
        guard drawn else { return }
        print(clear ? "\r\u{1B}[K" : "", terminator: clear ? "" : "\n")
        fflush(nil)
        drawn = false
    }
}

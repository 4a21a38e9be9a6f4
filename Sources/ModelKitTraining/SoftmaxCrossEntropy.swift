#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Softmax followed by cross-entropy against integer labels, fused for stability:
/// loss_i = logsumexp(z_i) − z_i[y_i] with the row maximum subtracted first, so huge logits
/// neither overflow nor produce NaN. The loss is the mean over the batch; the gradient is
/// (softmax(z) − onehot(y)) / N.
public enum SoftmaxCrossEntropy {
    public struct Result: Sendable {
        public var loss: Float
        public var gradient: Batch
        /// Samples whose arg-max logit equals the label.
        public var correct: Int
    }

    public static func compute(logits: Batch, labels: [Int32]) throws -> Result {
        guard logits.shape.count == 2, logits.shape[0] == labels.count, logits.shape[1] >= 1 else {
            throw TrainingError.shapeMismatch(layer: "softmax_cross_entropy",
                                              reason: "logits \(logits.shape) vs \(labels.count) labels")
        }
        let (n, classes) = (logits.shape[0], logits.shape[1])
        for (index, label) in labels.enumerated() where label < 0 || Int(label) >= classes {
            throw TrainingError.labelOutOfRange(index: index, label: Int(label), classes: classes)
        }
        var total = 0.0
        var correct = 0
        let scale = n > 0 ? 1 / Float(n) : 0
        let gradient = Batch.uninitialized(logits.shape) { g in
            logits.values.withUnsafeBufferPointer { z in
                for r in 0..<n {
                    let row = z.baseAddress! + r * classes
                    var best = 0
                    for j in 1..<classes where row[j] > row[best] { best = j }
                    let maximum = row[best]
                    var sum: Float = 0
                    for j in 0..<classes {
                        let e = expf(row[j] - maximum)
                        g[r * classes + j] = e
                        sum += e
                    }
                    let label = Int(labels[r])
                    total += Double(logf(sum)) - Double(row[label] - maximum)
                    if best == label { correct += 1 }
                    let inverse = 1 / sum
                    for j in 0..<classes { g[r * classes + j] *= inverse * scale }
                    g[r * classes + label] -= scale
                }
            }
        }
        return Result(loss: n > 0 ? Float(total / Double(n)) : 0, gradient: gradient, correct: correct)
    }
}

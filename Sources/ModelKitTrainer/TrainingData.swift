import ModelKitCore
import ModelKitData
import ModelKitTraining

/// Labelled samples, normalised once up front so a training step only copies.
public struct TrainingData: Sendable {
    /// Samples back to back, each `sampleShape` floats in NHWC order.
    public let samples: [Float]
    public let labels: [Int32]
    public let sampleShape: [Int]
    public let sampleSize: Int

    public var count: Int { labels.count }

    public init(samples: [Float], labels: [Int32], sampleShape: [Int]) {
        self.samples = samples
        self.labels = labels
        self.sampleShape = sampleShape
        self.sampleSize = sampleShape.reduce(1, *)
    }

    /// Samples `range` of an IDX dataset, normalised; labels must be below `classes`.
    public static func from(_ dataset: IDXDataset, range: Range<Int>, normalization: InputNormalization,
                            classes: Int, source: String) throws -> TrainingData {
        let size = dataset.rows * dataset.columns
        var samples = [Float](repeating: 0, count: range.count * size)
        var labels = [Int32](repeating: 0, count: range.count)
        for (position, index) in range.enumerated() {
            let label = dataset.label(index)
            guard label < classes else {
                throw TrainerError.datasetMismatch(reason: "\(source): label \(label) of sample \(index) is not below the model's \(classes) classes")
            }
            labels[position] = Int32(label)
            let image = dataset.image(index)
            var offset = position * size
            for pixel in image {
                samples[offset] = normalization.apply(Float(pixel), channel: 0)
                offset += 1
            }
        }
        return TrainingData(samples: samples, labels: labels, sampleShape: [dataset.rows, dataset.columns, 1])
    }

    /// The samples at `indices` as one batch.
    public func batch<C: Collection>(_ indices: C) -> (Batch, [Int32]) where C.Element == Int {
        var values = [Float](repeating: 0, count: indices.count * sampleSize)
        var batchLabels = [Int32]()
        batchLabels.reserveCapacity(indices.count)
        values.withUnsafeMutableBufferPointer { destination in
            samples.withUnsafeBufferPointer { source in
                for (position, index) in indices.enumerated() {
                    (destination.baseAddress! + position * sampleSize)
                        .update(from: source.baseAddress! + index * sampleSize, count: sampleSize)
                    batchLabels.append(labels[index])
                }
            }
        }
        return (Batch(shape: [indices.count] + sampleShape, values: values), batchLabels)
    }
}

import Foundation
import ModelKitCore
import ModelKitData

/// Turns user files (IDX images, PNG, .npy) into the float batch a model's input expects,
/// applying the normalisation stored in the model to raw pixels.
struct ModelInput {
    /// The batch fed to the model, shaped like the model input.
    var tensor: Tensor
    /// A name per sample for display ("#12", "shirt.png", ...).
    var sampleNames: [String]
    /// Ground-truth labels when the input carries them (an IDX images file with its labels file).
    var labels: [Int]?

    /// The sample shape the model takes (its input shape without the batch dimension).
    static func sampleShape(of model: Model) throws -> (input: ValueInfo, sample: [Int]) {
        guard model.graph.inputs.count == 1, let input = model.graph.inputs.first else {
            throw CommandFailure.usage("model has \(model.graph.inputs.count) inputs; `run` feeds single-input models")
        }
        guard input.shape.rank >= 1 else { throw CommandFailure.data("model input '\(input.name)' is a scalar") }
        return (input, Array(input.shape.dims.dropFirst()))
    }

    /// Raw 8-bit pixel images (HWC) to a normalised batch.
    static func fromPixels(_ images: [[UInt8]], height: Int, width: Int, channels: Int, names: [String],
                           model: Model, source: String) throws -> ModelInput {
        let (input, sample) = try sampleShape(of: model)
        let fits: Bool
        if sample.count == 3 {
            fits = sample == [height, width, channels]
        } else {
            // A flat model input ([N, K]) takes the image row-major.
            fits = Shape.checkedProduct(sample) == height * width * channels
        }
        guard fits else {
            throw CommandFailure.data("\(source): images are \(height)x\(width)x\(channels), model input '\(input.name)' expects \(Shape(input.shape.dims.dropFirst().map { $0 }))")
        }
        let normalization = model.metadata.normalization ?? InputNormalization()
        var values: [Float] = []
        values.reserveCapacity(images.count * height * width * channels)
        for image in images {
            for (index, pixel) in image.enumerated() {
                values.append(normalization.apply(Float(pixel), channel: index % channels))
            }
        }
        return ModelInput(tensor: Tensor(shape: Shape([images.count] + sample), floats: values), sampleNames: names, labels: nil)
    }

    /// Loads `path` by its kind. `selection` picks samples from a multi-sample file.
    static func load(path: String, selection: Range<Int>?, model: Model) throws -> ModelInput {
        let lower = path.lowercased()
        if lower.hasSuffix(".png") {
            guard selection == nil else { throw CommandFailure.usage("--index/--range apply to IDX and .npy inputs, not PNG") }
            let image = try PNG.read(path)
            return try fromPixels([image.pixels], height: image.height, width: image.width, channels: image.channels,
                                  names: [FileSystem.baseName(of: path)], model: model, source: path)
        }
        if lower.hasSuffix(".npy") {
            return try loadNpy(path: path, selection: selection, model: model)
        }
        return try loadIDX(path: path, selection: selection ?? 0..<1, model: model)
    }

    static func checkSelection(_ selection: Range<Int>, count: Int, source: String) throws {
        guard selection.lowerBound >= 0, selection.upperBound <= count, !selection.isEmpty else {
            throw CommandFailure.usage("\(source) holds \(count) samples; \(selection.lowerBound)..<\(selection.upperBound) is out of range")
        }
    }

    /// Decompresses the images file only up to the last selected image, and the labels file only up
    /// to the last selected label, so one image from a large gzipped file costs little.
    static func loadIDX(path: String, selection: Range<Int>, model: Model) throws -> ModelInput {
        let reader = try IDXReader(path: path)
        guard reader.dataType == .uint8, reader.shape.rank == 3 || reader.shape.rank == 4 else {
            throw CommandFailure.data("\(path): expected an IDX file of 8-bit images [count, rows, columns], got \(reader.dataType) \(reader.shape)")
        }
        let (count, height, width) = (reader.shape[0], reader.shape[1], reader.shape[2])
        let channels = reader.shape.rank == 4 ? reader.shape[3] : 1
        try checkSelection(selection, count: count, source: path)
        let size = height * width * channels
        let data = try reader.readRecords(selection)
        let images = (0..<selection.count).map { Array(data[($0 * size)..<(($0 + 1) * size)]) }
        var input = try fromPixels(images, height: height, width: width, channels: channels,
                                   names: selection.map { "#\($0)" }, model: model, source: path)
        input.labels = try companionLabels(forImages: path, count: count, selection: selection)
        return input
    }

    /// The labels file beside an IDX images file (`…-images-idx3-ubyte` → `…-labels-idx1-ubyte`), if any.
    static func companionLabels(forImages path: String, count: Int) throws -> [Int]? {
        try companionLabels(forImages: path, count: count, selection: 0..<count)
    }

    /// The `selection` labels of the labels file beside an IDX images file of `count` images, if
    /// there is one that fits; decompressed only up to the last selected label.
    static func companionLabels(forImages path: String, count: Int, selection: Range<Int>) throws -> [Int]? {
        guard path.contains("images-idx3") else { return nil }
        let labelsPath = path.replacingOccurrences(of: "images-idx3", with: "labels-idx1")
        guard FileSystem.fileExists(labelsPath) else { return nil }
        let labels = try IDXReader(path: labelsPath)
        guard labels.dataType == .uint8, labels.shape.rank == 1, labels.count == count else { return nil }
        return try labels.readRecords(selection).map { Int($0) }
    }

    static func loadNpy(path: String, selection: Range<Int>?, model: Model) throws -> ModelInput {
        let array = try NpyArray.read(path)
        let (input, sample) = try sampleShape(of: model)
        if array.dtype == .uint8 {
            // Raw pixels: [H,W], [H,W,C], [N,H,W] or [N,H,W,C], matched against the model's image input.
            let dims = array.shape.dims
            let modelChannels = sample.count == 3 ? sample[2] : 1
            let batched: [Int]
            switch dims.count {
            case 2: batched = [1, dims[0], dims[1], 1]
            case 3 where dims[2] == modelChannels && sample.count == 3 && dims[0] == sample[0]: batched = [1] + dims
            case 3: batched = dims + [1]
            case 4: batched = dims
            default: throw CommandFailure.data("\(path): uint8 array \(array.shape) is not an image or a batch of images")
            }
            guard batched[0] > 0 else { throw CommandFailure.data("\(path): holds no samples") }
            let chosen = selection ?? 0..<batched[0]
            try checkSelection(chosen, count: batched[0], source: path)
            let size = batched[1] * batched[2] * batched[3]
            let pixels = array.values.map { UInt8(clamping: Int($0)) }
            let images = chosen.map { Array(pixels[($0 * size)..<(($0 + 1) * size)]) }
            return try fromPixels(images, height: batched[1], width: batched[2], channels: batched[3],
                                  names: chosen.map { "#\($0)" }, model: model, source: path)
        }
        // Float arrays are fed as they are: one sample shaped like the model input, or a batch.
        let dims = array.shape.dims
        let batch: [Int]
        if dims == sample {
            batch = [1] + sample
        } else if dims.count == sample.count + 1, Array(dims.dropFirst()) == sample {
            batch = dims
        } else {
            throw CommandFailure.data("\(path): array \(array.shape) does not fit model input '\(input.name)' \(input.shape)")
        }
        guard batch[0] > 0 else { throw CommandFailure.data("\(path): holds no samples") }
        let chosen = selection ?? 0..<batch[0]
        try checkSelection(chosen, count: batch[0], source: path)
        let size = sample.reduce(1, *)
        let values = Array(array.values[(chosen.lowerBound * size)..<(chosen.upperBound * size)])
        return ModelInput(tensor: Tensor(shape: Shape([chosen.count] + sample), floats: values),
                          sampleNames: chosen.map { "#\($0)" }, labels: nil)
    }
}

/// Parses "A:B" (half-open) or "A" into a range.
func parseRange(_ text: String) throws -> Range<Int> {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2, let lower = Int(parts[0]), let upper = Int(parts[1]), lower >= 0, upper > lower else {
        throw CommandFailure.usage("--range expects START:END with 0 <= START < END, got '\(text)'")
    }
    return lower..<upper
}

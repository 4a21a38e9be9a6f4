import ModelKitCore
import ModelKitFormat
import ModelKitONNX

/// The model `export` starts from: a .mkm/.mkc file, or an imported .onnx file.
struct ExportSource {
    var model: Model
    var isONNX: Bool
    var fileBytes: Int

    var description: String {
        isONNX ? "ONNX, opset \(model.metadata.properties["onnx.opset"] ?? "?")" : model.kind.rawValue
    }

    init(path: String) throws {
        if path.lowercased().hasSuffix(".onnx") {
            isONNX = true
            do {
                model = try ONNXImporter.importModel(path: path)
            } catch ONNXError.file(let error) {
                throw error  // names the path; keeps "not found" distinct for the exit code
            } catch let error as ONNXError {
                throw CommandFailure.data("\(path): \(error)")
            }
            ExportSource.restoreMetadata(&model.metadata)
            fileBytes = try FileSystem.fileSize(path)
        } else {
            isONNX = false
            let loaded = try LoadedModel(path: path)
            model = loaded.model
            fileBytes = loaded.info.fileBytes
        }
    }

    /// Labels and normalisation that `ONNXExporter` stored as metadata_props come back as model metadata.
    static func restoreMetadata(_ metadata: inout ModelMetadata) {
        let labelsKey = "onnx.metadata.\(ONNXExporter.labelsKey)"
        if let labels = metadata.properties[labelsKey] {
            metadata.labels = labels.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            metadata.properties[labelsKey] = nil
        }
        let normalizationKey = "onnx.metadata.\(ONNXExporter.normalizationKey)"
        if let text = metadata.properties[normalizationKey], let normalization = ONNXExporter.decodeNormalization(text) {
            metadata.normalization = normalization
            metadata.properties[normalizationKey] = nil
        }
    }
}

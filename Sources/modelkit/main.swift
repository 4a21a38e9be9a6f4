import ModelKitCLI

ModelKitCommand.main()

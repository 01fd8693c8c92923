; Inno Setup script: wraps the PyInstaller one-folder build (dist\netcore-desktop) in an
; installer. Build the folder first with `pyinstaller packaging\netcore-desktop.spec`,
; then `iscc packaging\windows\netcore-desktop.iss`.
[Setup]
AppId={{6B0E5F43-7C55-4F0B-9A51-3C2C4E9D1A77}
AppName=Netcore Desktop
AppVersion=0.1.0
DefaultDirName={autopf}\Netcore Desktop
DefaultGroupName=Netcore Desktop
OutputBaseFilename=netcore-desktop-setup
Compression=lzma2
SolidCompression=yes
PrivilegesRequired=lowest

[Files]
Source: "..\..\dist\netcore-desktop\*"; DestDir: "{app}"; Flags: recursesubdirs

[Icons]
Name: "{group}\Netcore Desktop"; Filename: "{app}\netcore-desktop.exe"
Name: "{group}\Netcore Desktop (offline sandbox)"; Filename: "{app}\netcore-desktop.exe"; Parameters: "--sandbox"

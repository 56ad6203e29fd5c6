; NSIS installer for MelaScreen on Windows: installs the PyInstaller folder, Start-menu and desktop
; shortcuts, an Add/Remove Programs entry and an uninstaller.
; Built by packaging/build_dist.py:
;   makensis /DVERSION=0.1.0 /DAPPDIR=dist\melascreen /DOUTFILE=dist\melascreen-0.1.0-windows-x64-setup.exe
;            /DICON=packaging\icons\melascreen.ico packaging\windows\melascreen.nsi
; (on Linux the options are written -DVERSION=...). APPDIR must hold melascreen.exe,
; melascreen-cli.exe, NOTICES, licenses\ and _internal\.

Unicode true
SetCompressor /SOLID lzma

!ifndef VERSION
  !error "pass -DVERSION=x.y.z"
!endif
!ifndef APPDIR
  !error "pass -DAPPDIR=<the PyInstaller folder dist/melascreen>"
!endif
!ifndef OUTFILE
  !define OUTFILE "melascreen-${VERSION}-windows-x64-setup.exe"
!endif
!ifndef ICON
  !define ICON "..\icons\melascreen.ico"
!endif

!define APPNAME "MelaScreen"
!define UNINSTKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\MelaScreen"

!include "MUI2.nsh"
!include "x64.nsh"
!include "FileFunc.nsh"

Name "${APPNAME} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${APPNAME}"
InstallDirRegKey HKLM "${UNINSTKEY}" "InstallLocation"
RequestExecutionLevel admin
BrandingText "${APPNAME} ${VERSION} - research tool, not a medical device"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\melascreen.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start MelaScreen"

!insertmacro MUI_PAGE_WELCOME
!define MUI_LICENSEPAGE_TEXT_TOP "MelaScreen is a research tool, not a medical device. Third-party notices:"
!insertmacro MUI_PAGE_LICENSE "${APPDIR}\NOTICES"
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APPNAME}"
VIAddVersionKey "FileDescription" "${APPNAME} installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "See NOTICES"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "MelaScreen needs 64-bit Windows."
    Abort
  ${EndIf}
  SetRegView 64
  SetShellVarContext all
FunctionEnd

Function un.onInit
  SetRegView 64
  SetShellVarContext all
FunctionEnd

Section "MelaScreen" SecMain
  SectionIn RO
  ; An upgrade replaces the bundled libraries wholesale: stale DLLs must not linger.
  RMDir /r "$INSTDIR\_internal"
  SetOutPath "$INSTDIR"
  File /r "${APPDIR}\*.*"
  WriteUninstaller "$INSTDIR\Uninstall.exe"

  CreateDirectory "$SMPROGRAMS\${APPNAME}"
  CreateShortcut "$SMPROGRAMS\${APPNAME}\${APPNAME}.lnk" "$INSTDIR\melascreen.exe" "" "$INSTDIR\melascreen.exe" 0
  CreateShortcut "$SMPROGRAMS\${APPNAME}\Third-party notices.lnk" "$INSTDIR\NOTICES"
  CreateShortcut "$SMPROGRAMS\${APPNAME}\Uninstall ${APPNAME}.lnk" "$INSTDIR\Uninstall.exe"
  CreateShortcut "$DESKTOP\${APPNAME}.lnk" "$INSTDIR\melascreen.exe" "" "$INSTDIR\melascreen.exe" 0

  WriteRegStr HKLM "${UNINSTKEY}" "DisplayName" "${APPNAME}"
  WriteRegStr HKLM "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTKEY}" "Publisher" "MelaScreen team"
  WriteRegStr HKLM "${UNINSTKEY}" "DisplayIcon" "$INSTDIR\melascreen.exe"
  WriteRegStr HKLM "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTKEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegStr HKLM "${UNINSTKEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTKEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTKEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKLM "${UNINSTKEY}" "EstimatedSize" $0
SectionEnd

Section "Uninstall"
  Delete "$DESKTOP\${APPNAME}.lnk"
  RMDir /r "$SMPROGRAMS\${APPNAME}"
  ; Only what the installer put there: never RMDir /r $INSTDIR itself (it may be a folder the
  ; user chose that holds other files). Screening results live in %LOCALAPPDATA%\MelaScreen and stay.
  RMDir /r "$INSTDIR\_internal"
  RMDir /r "$INSTDIR\licenses"
  Delete "$INSTDIR\melascreen.exe"
  Delete "$INSTDIR\melascreen-cli.exe"
  Delete "$INSTDIR\NOTICES"
  Delete "$INSTDIR\Uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${UNINSTKEY}"
SectionEnd

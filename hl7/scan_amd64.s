//go:build !purego

#include "textflag.h"

// CHUNK compares the 16 bytes at off(SI) with the broadcast bytes of the
// vecTab in X8-X15 and leaves one bit per byte in AX (field separator), BX (CR
// or LF), CX (repetition, component, subcomponent or escape character) and DX
// (space).
#define CHUNK(off) \
	MOVOU	off(SI), X0; \
	MOVO	X0, X1; PCMPEQB	X8, X1; PMOVMSKB X1, AX; \
	MOVO	X0, X2; PCMPEQB	X9, X2; MOVO X0, X3; PCMPEQB X10, X3; POR X3, X2; PMOVMSKB X2, BX; \
	MOVO	X0, X1; PCMPEQB	X15, X1; PMOVMSKB X1, DX; \
	MOVO	X0, X4; PCMPEQB	X11, X4; \
	MOVO	X0, X5; PCMPEQB	X12, X5; POR X5, X4; \
	MOVO	X0, X6; PCMPEQB	X13, X6; POR X6, X4; \
	PCMPEQB	X14, X0; POR X0, X4; PMOVMSKB X4, CX

// ACC shifts a chunk's masks into place and ors them into R8-R11.
#define ACC(sh) \
	SHLQ	$sh, AX; ORQ AX, R8; \
	SHLQ	$sh, BX; ORQ BX, R9; \
	SHLQ	$sh, CX; ORQ CX, R10; \
	SHLQ	$sh, DX; ORQ DX, R11

// func blockMasks(p *byte, tab *vecTab, out *blockMask)
TEXT ·blockMasks(SB), NOSPLIT, $0-24
	MOVQ	p+0(FP), SI
	MOVQ	tab+8(FP), AX
	CMPB	·useAVX2(SB), $0
	JEQ	sse2

	// AVX2: two 32-byte halves, each compared with the eight broadcast bytes.
	MOVQ	out+16(FP), DI
	VPBROADCASTB	0(AX), Y8
	VPBROADCASTB	16(AX), Y9
	VPBROADCASTB	32(AX), Y10
	VPBROADCASTB	48(AX), Y11
	VPBROADCASTB	64(AX), Y12
	VPBROADCASTB	80(AX), Y13
	VPBROADCASTB	96(AX), Y14
	VPBROADCASTB	112(AX), Y15
	VMOVDQU	0(SI), Y0
	VMOVDQU	32(SI), Y1

	// field separator
	VPCMPEQB	Y8, Y0, Y2
	VPMOVMSKB	Y2, AX
	VPCMPEQB	Y8, Y1, Y3
	VPMOVMSKB	Y3, BX
	SHLQ	$32, BX
	ORQ	BX, AX
	MOVQ	AX, 0(DI)

	// CR or LF
	VPCMPEQB	Y9, Y0, Y2
	VPCMPEQB	Y10, Y0, Y3
	VPOR	Y3, Y2, Y2
	VPMOVMSKB	Y2, AX
	VPCMPEQB	Y9, Y1, Y4
	VPCMPEQB	Y10, Y1, Y5
	VPOR	Y5, Y4, Y4
	VPMOVMSKB	Y4, BX
	SHLQ	$32, BX
	ORQ	BX, AX
	MOVQ	AX, 8(DI)

	// repetition, component, subcomponent or escape character
	VPCMPEQB	Y11, Y0, Y2
	VPCMPEQB	Y12, Y0, Y3
	VPOR	Y3, Y2, Y2
	VPCMPEQB	Y13, Y0, Y3
	VPOR	Y3, Y2, Y2
	VPCMPEQB	Y14, Y0, Y3
	VPOR	Y3, Y2, Y2
	VPMOVMSKB	Y2, AX
	VPCMPEQB	Y11, Y1, Y4
	VPCMPEQB	Y12, Y1, Y5
	VPOR	Y5, Y4, Y4
	VPCMPEQB	Y13, Y1, Y5
	VPOR	Y5, Y4, Y4
	VPCMPEQB	Y14, Y1, Y5
	VPOR	Y5, Y4, Y4
	VPMOVMSKB	Y4, BX
	SHLQ	$32, BX
	ORQ	BX, AX
	MOVQ	AX, 16(DI)

	// space
	VPCMPEQB	Y15, Y0, Y2
	VPMOVMSKB	Y2, AX
	VPCMPEQB	Y15, Y1, Y3
	VPMOVMSKB	Y3, BX
	SHLQ	$32, BX
	ORQ	BX, AX
	MOVQ	AX, 24(DI)
	VZEROUPPER
	RET

sse2:
	MOVOU	0(AX), X8
	MOVOU	16(AX), X9
	MOVOU	32(AX), X10
	MOVOU	48(AX), X11
	MOVOU	64(AX), X12
	MOVOU	80(AX), X13
	MOVOU	96(AX), X14
	MOVOU	112(AX), X15

	CHUNK(0)
	MOVQ	AX, R8
	MOVQ	BX, R9
	MOVQ	CX, R10
	MOVQ	DX, R11
	CHUNK(16)
	ACC(16)
	CHUNK(32)
	ACC(32)
	CHUNK(48)
	ACC(48)

	MOVQ	out+16(FP), SI
	MOVQ	R8, 0(SI)
	MOVQ	R9, 8(SI)
	MOVQ	R10, 16(SI)
	MOVQ	R11, 24(SI)
	RET
